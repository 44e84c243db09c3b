"""Schema migrations: store/sql/NNN_<name>.sql applied in order, each recorded in the database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import duckdb

from store.errors import MigrationError

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
)
"""
SELECT_APPLIED = "SELECT version FROM schema_migrations ORDER BY version"
INSERT_APPLIED = "INSERT INTO schema_migrations (version, name) VALUES (?, ?)"
FILE_PATTERN = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in store/sql, in order."""
    found = []
    for entry in resources.files("store").joinpath("sql").iterdir():
        match = FILE_PATTERN.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(con: duckdb.DuckDBPyConnection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply the migrations the database lacks, each in one transaction; return their versions."""
    migrations = bundled_migrations() if migrations is None else migrations
    con.execute(CREATE_MIGRATIONS_TABLE)
    applied = {row[0] for row in con.execute(SELECT_APPLIED).fetchall()}
    known = {m.version for m in migrations}
    if applied - known:
        raise MigrationError(
            f"This database has schema version {max(applied)}, newer than this computewatch "
            f"knows ({max(known)}). Upgrade computewatch to open it."
        )
    done = []
    for migration in migrations:
        if migration.version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(INSERT_APPLIED, [migration.version, migration.name])
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise MigrationError(
                f"migration {migration.version} ({migration.name}) failed: {exc}"
            ) from exc
        done.append(migration.version)
    return done
