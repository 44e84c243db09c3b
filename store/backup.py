"""Backups of a database as Parquet with a checksummed manifest, and restore into a new file.

A backup is a directory: one Parquet file per table (the events table is the source of truth;
feed state and other stored tables come along) and `manifest.json` with the schema version,
the head seq, row counts, a digest of the log's envelopes and the SHA-256 of every file. It is
read in one transaction, so it is consistent however many appends run meanwhile (DuckDB
transactions see a snapshot), and it does not hold up the writer. Maintained read models
(deal_current and the tables behind it) are not copied: restore rebuilds them from the log.

Restore creates a new file only: the schema at the backup's version, the rows inserted verbatim
(seq, ids, versions, recorded_at, payloads), the counts and the digest checked, then the later
migrations applied and the projections rebuilt; the file appears under its name only when all
of that succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from store.errors import StoreError
from store.log import EventStore, connect
from store.migrations import Migration, bundled_migrations, migrate
from store.projections import rebuild_projections

FORMAT = "computewatch-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Read models that restore rebuilds from the log (store.projections.rebuild_projections)
# instead of copying: deal_current up to schema 3, the tables behind it from schema 4, and
# from schema 6 the checkpoint that says how far they have folded the log (the rebuild sets it).
# A table that is missing here is copied and then rebuilt: larger backups, same result.
DERIVED_TABLES = frozenset(
    {"deal_current", "deal_state", "deal_link_events", "deal_count", "projection_checkpoint"}
)
# Recorded in the manifest as schema_version; restore recreates it by migrating.
SCHEMA_TABLE = "schema_migrations"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_CHUNK = 1 << 20

SELECT_TABLES = """
SELECT table_name FROM duckdb_tables()
WHERE database_name = current_database() AND schema_name = 'main' AND NOT temporary
ORDER BY table_name
"""
SELECT_SCHEMA_VERSION = "SELECT coalesce(max(version), 0) FROM schema_migrations"
# The envelope of every event (what the log is), hashed in seq order: equal digests mean the
# same events with the same seq, ids, versions, times and payloads. md5 is stable across
# DuckDB versions (hash() is not); this detects change, it is not a signature.
SELECT_LOG_DIGEST = """
SELECT count(*), coalesce(max(seq), 0), coalesce(md5(string_agg(md5(concat_ws(chr(31),
    seq, event_id, stream_id, version, type, schema, epoch_us(occurred_at),
    epoch_us(recorded_at), actor, coalesce(source_url, chr(0)), coalesce(source_title, chr(0)),
    idempotency_key, payload::VARCHAR)), '' ORDER BY seq)), '')
FROM events
"""


class BackupError(StoreError):
    """Raised when a backup cannot be written, or a directory is not an intact backup, or a
    restore would overwrite a database; nothing is left half-written."""


@dataclass(frozen=True)
class TableFile:
    """One table of a backup: its Parquet file, row count, size and SHA-256."""

    file: str
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a backup holds; `events`/`head`/`log_digest` describe the log at backup time."""

    created_at: str
    schema_version: int
    events: int
    head: int
    log_digest: str
    tables: dict[str, TableFile] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != FORMAT:
            raise BackupError("manifest.json is not a computewatch backup manifest")
        if data.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"backup format {data.get('format_version')} is not supported "
                f"(this computewatch reads format {FORMAT_VERSION})"
            )
        tables = {name: TableFile(**info) for name, info in data.pop("tables").items()}
        return cls(**data, tables=tables)


def backup_store(store: EventStore, directory: Path) -> Manifest:
    """Back up the store of this process while it runs; appends go on meanwhile."""
    return _backup(store.cursor(), directory)


def backup_file(db: Path, directory: Path) -> Manifest:
    """Back up a database file that no process holds for writing (DatabaseLockedError if one
    does: then back up through that process). The file is opened read-only, not changed."""
    if not db.is_file():
        raise BackupError(f"there is no database at {db}")
    con = connect(db, read_only=True)
    try:
        return _backup(con.cursor(), directory)
    finally:
        con.close()


def _backup(cur: duckdb.DuckDBPyConnection, directory: Path) -> Manifest:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    tables: dict[str, TableFile] = {}
    try:
        # One transaction: every file and the digest see the same snapshot of the database.
        cur.execute("BEGIN TRANSACTION")
        try:
            schema_version = int(cur.execute(SELECT_SCHEMA_VERSION).fetchone()[0])  # type: ignore[index]
            events, head, digest = cur.execute(SELECT_LOG_DIGEST).fetchone()  # type: ignore[misc]
            for (name,) in cur.execute(SELECT_TABLES).fetchall():
                if name in DERIVED_TABLES or name == SCHEMA_TABLE:
                    continue
                path = directory / f"{_identifier(name)}.parquet"
                order = " ORDER BY seq" if name == "events" else ""
                rows = cur.execute(
                    f'COPY (SELECT * FROM "{name}"{order}) TO $path '
                    "(FORMAT parquet, COMPRESSION zstd)",
                    {"path": str(path)},
                ).fetchone()[0]  # type: ignore[index]
                tables[name] = TableFile(path.name, int(rows), path.stat().st_size, sha256(path))
        finally:
            cur.execute("ROLLBACK")  # read-only: nothing to keep
        if "events" not in tables:
            raise BackupError("the database has no events table")
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(),
            schema_version=schema_version,
            events=int(events),
            head=int(head),
            log_digest=str(digest),
            tables=tables,
        )
        # The manifest comes last: a directory without one is not a backup.
        tmp = directory / f".{MANIFEST}.tmp"
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        tmp.replace(directory / MANIFEST)
    except (duckdb.Error, OSError) as exc:
        _remove_files(directory, [*(t.file for t in tables.values()), f".{MANIFEST}.tmp"])
        raise BackupError(f"cannot back up into {directory}: {exc}") from exc
    return manifest


def verify_backup(directory: Path) -> Manifest:
    """The manifest of an intact backup: every file present with its size and SHA-256."""
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(f"{directory} is not a computewatch backup (no {MANIFEST})")
    try:
        manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError) as exc:
        raise BackupError(f"{path} is damaged: {exc}") from exc
    if "events" not in manifest.tables:
        raise BackupError(f"{path} lists no events file")
    for name, table in manifest.tables.items():
        _identifier(name)
        file = directory / table.file
        if Path(table.file).name != table.file or not file.is_file():
            raise BackupError(f"{table.file} (table {name}) is missing from {directory}")
        if file.stat().st_size != table.bytes or sha256(file) != table.sha256:
            raise BackupError(
                f"{table.file} does not match its checksum in the manifest: the backup is "
                "damaged; use another one"
            )
    return manifest


def restore_backup(directory: Path, db: Path) -> Manifest:
    """Restore a backup into a new database file `db` (refused if it exists); returns the
    manifest after checking the restored rows against it."""
    manifest = verify_backup(directory)
    if db.exists() or db.with_name(db.name + ".wal").exists():
        raise BackupError(f"{db} already exists; restore writes a new database file only")
    known = bundled_migrations()
    if manifest.schema_version > max(m.version for m in known):
        raise BackupError(
            f"the backup has schema version {manifest.schema_version}, newer than this "
            "computewatch knows; restore it with a newer computewatch"
        )
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restoring-{os.getpid()}")
    _remove_database(tmp)
    try:
        con = connect(tmp)
        try:
            _restore_into(con, directory, manifest, known)
        except duckdb.Error as exc:
            raise BackupError(f"cannot restore {directory}: {exc}; nothing was restored") from exc
        finally:
            con.close()
        _publish(tmp, db)
    except BaseException:
        _remove_database(tmp)
        raise
    return manifest


def _restore_into(
    con: duckdb.DuckDBPyConnection,
    directory: Path,
    manifest: Manifest,
    known: list[Migration],
) -> None:
    # The schema as it was when the backup was made, so that its columns match the files;
    # later migrations then bring the rows forward like those of any older database.
    migrate(con, [m for m in known if m.version <= manifest.schema_version])
    present = {r[0] for r in con.execute(SELECT_TABLES).fetchall()}
    con.execute("BEGIN TRANSACTION")
    try:
        for name, table in manifest.tables.items():
            if name not in present:
                raise BackupError(
                    f"the backup has a table {name} that schema version "
                    f"{manifest.schema_version} does not"
                )
            con.execute(
                f'INSERT INTO "{_identifier(name)}" BY NAME SELECT * FROM read_parquet($path)',
                {"path": str(directory / table.file)},
            )
            rows = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # type: ignore[index]
            if rows != table.rows:
                raise BackupError(
                    f"table {name}: {rows} rows restored, the manifest says {table.rows}"
                )
        events, head, digest = con.execute(SELECT_LOG_DIGEST).fetchone()  # type: ignore[misc]
        if (events, head, digest) != (manifest.events, manifest.head, manifest.log_digest):
            raise BackupError(
                "the restored log does not match the manifest "
                f"({events} events to seq {head}, expected {manifest.events} to seq "
                f"{manifest.head}, or a different digest); nothing was restored"
            )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    migrate(con)
    con.execute("BEGIN TRANSACTION")
    rebuild_projections(con)
    con.execute("COMMIT")
    con.execute("CHECKPOINT")


def _publish(tmp: Path, db: Path) -> None:
    """Give the restored file its name, unless a file took that name meanwhile."""
    try:
        os.link(tmp, db)  # fails if db exists: never overwrites
    except FileExistsError:
        raise BackupError(f"{db} already exists; restore writes a new database file only") from None
    except OSError:  # a file system without hard links
        if db.exists():
            raise BackupError(
                f"{db} already exists; restore writes a new database file only"
            ) from None
        os.replace(tmp, db)
        return
    tmp.unlink()


def _remove_database(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _remove_files(directory: Path, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            (directory / name).unlink()


def _identifier(name: str) -> str:
    # Table names come from the database's own catalog (our migrations); this keeps anything
    # else out of the SQL text.
    if not _IDENTIFIER.match(name):
        raise BackupError(f"unexpected table name {name!r}")
    return name


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
