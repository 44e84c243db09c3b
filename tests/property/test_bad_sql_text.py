"""Bad SQL text, generated, against the sandbox on a real log file: every text gets a result or a
SqlSandboxError with a clear message (never another exception), and the file is unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bot.services import open_services
from store.clock import ManualClock
from store.sandbox import MAX_SQL_CHARS, QueryResult, SqlSandbox, SqlSandboxError
from tests.property.junk import (
    JUNK_TEXT,
    NASTY_TEXT,
    ShortRepr,
    assert_clear_message,
    bad_input_settings,
)

NOW = datetime(2026, 8, 1, tzinfo=UTC)
MAX_ROWS = 20


class Sandbox(ShortRepr, SqlSandbox):
    def __repr__(self) -> str:
        return "<sandbox>"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sql") / "log.duckdb"
    open_services(path, clock=ManualClock(NOW)).close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sandbox(db: Path) -> Iterator[SqlSandbox]:
    before = digest(db)
    with Sandbox(db, timeout_s=2.0, max_rows=MAX_ROWS) as box:
        yield box
    assert digest(db) == before, "the sandbox changed the database file"
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name], "the sandbox wrote a file"


WORDS = [
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "UNION ALL",
    "JOIN",
    "ON",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "OFFSET",
    "EXPLAIN",
    "EXPLAIN ANALYZE",
    "DESCRIBE",
    "SHOW TABLES",
    "SUMMARIZE",
    "PIVOT",
    "events",
    "deals",
    "deal_history",
    "deal_current",
    "lab_positions()",
    "lab_positions(TIMESTAMPTZ '2025-12-31 23:59:59+00')",
    "deal_counting(NULL, NULL, ['openai'])",
    "payload->>'$.lab'",
    "*",
    "count(*)",
    "seq",
    "1e308 * 10",
    "0/0",
    "1//0",
    "9223372036854775807 + 1",
    "'2026-02-30'::DATE",
    "NULL",
    "[1, 2, 3]",
    "{'a': 1}",
    "repeat('x', 100000)",
    "range(10)",
    "read_csv('/etc/passwd')",
    "read_text('/etc/hostname')",
    "glob('/*')",
    "getenv('HOME')",
    "current_setting('enable_external_access')",
    "nextval('x')",
    "ATTACH ':memory:' AS m",
    "COPY events TO '/tmp/x.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA database_list",
    "CALL pragma_version()",
    "CREATE TABLE t (x INT)",
    "INSERT INTO events DEFAULT VALUES",
    "UPDATE events SET actor = 'x'",
    "DELETE FROM events",
    "DROP VIEW deals",
    "CHECKPOINT",
    "EXPORT DATABASE '/tmp/x'",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "VACUUM",
    ";",
    "--",
    "/*",
    "*/",
    "(",
    ")",
    "'",
    '"',
    "$$",
    "\\",
    ",",
]
VIEWS = ["events", "deals", "deal_history", "deal_current", "lab_positions()", "lab_chips()"]
COLUMNS = ["*", "seq", "stream_id", "payload", "occurred_at", "lab", "count(*)", "1"]
LITERALS = st.one_of(
    JUNK_TEXT.map(lambda t: "'" + t.replace("'", "''") + "'"),
    st.sampled_from(
        ["NULL", "1e308", "-0.0", "'NaN'::DOUBLE", "'inf'::DOUBLE", "99999999999999999999"]
    ),
    st.sampled_from(["'2026-02-30'", "TIMESTAMPTZ '2026-01-01 00:00:00+00'", "'\\x00'::BLOB"]),
)


@st.composite
def selects(draw: st.DrawFn) -> str:
    """Queries that parse, over the project's views, with junk values in them."""
    column = draw(st.sampled_from(COLUMNS))
    view = draw(st.sampled_from(VIEWS))
    literal = draw(LITERALS)
    shape = draw(st.sampled_from(["where", "select", "cast", "json", "like"]))
    if shape == "where":
        return f"SELECT {column} FROM {view} WHERE seq::VARCHAR = {literal} LIMIT 5"
    if shape == "select":
        return f"SELECT {literal} AS v, {column} FROM {view} LIMIT 3"
    if shape == "cast":
        target = draw(st.sampled_from(["INTEGER", "DATE", "DOUBLE", "JSON", "UUID", "HUGEINT"]))
        return f"SELECT TRY_CAST({literal} AS {target}) AS v, CAST({literal} AS {target}) AS w"
    if shape == "json":
        return f"SELECT json_extract(payload, {literal}) FROM events LIMIT 3"
    return f"SELECT count(*) FROM {view} WHERE CAST({column} AS VARCHAR) LIKE {literal}"


SQL_TEXT = st.one_of(
    selects(),
    selects(),
    JUNK_TEXT,
    st.lists(st.sampled_from(WORDS) | NASTY_TEXT, min_size=1, max_size=10).map(" ".join),
    st.tuples(
        st.sampled_from(["SELECT", "WITH q AS (SELECT 1) SELECT", "EXPLAIN SELECT", "FROM"]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
        st.sampled_from(["", ";", "; SELECT 1", "; DELETE FROM events", " -- x", "\x00"]),
    ).map("".join),
    st.sampled_from(["(", "SELECT -", "SELECT NOT ", "SELECT [", "SELECT (SELECT "]).map(
        lambda opener: opener * 3000
    ),
    st.just("SELECT 1 -- " + "x" * (MAX_SQL_CHARS + 1)),
)


@bad_input_settings(max_examples=300)
@given(sql=SQL_TEXT)
def test_any_sql_text_gets_a_result_or_a_clear_refusal(sandbox: SqlSandbox, sql: str) -> None:
    try:
        result = sandbox.run(sql)
    except SqlSandboxError as exc:
        event(type(exc).__name__)
        assert_clear_message(str(exc))
        return

    event("result")
    assert isinstance(result, QueryResult)
    assert len(result.rows) <= MAX_ROWS
    json.dumps({"columns": result.columns, "rows": result.rows}, allow_nan=False)


def test_the_log_reads_the_same_after_the_bad_sql(sandbox: SqlSandbox) -> None:
    result = sandbox.run("SELECT count(*), max(seq) FROM events")

    assert result.rows[0][0] == result.rows[0][1] > 0
