"""The SQL sandbox on a real DuckDB file: queries answer, attacks are refused or stopped."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from store.sandbox import (
    QueryResult,
    SqlQueryError,
    SqlRefusedError,
    SqlSandbox,
    SqlSandboxError,
    SqlTimeoutError,
    sandbox_config,
    to_csv,
)

TIMEOUT_S = 0.5
MAX_ROWS = 5
SECRET = "top-secret-line"

SCHEMA = [
    "CREATE TABLE deals (slug VARCHAR, lab VARCHAR, capacity_mw DOUBLE, usd DECIMAL(18, 2), "
    "recorded_at TIMESTAMPTZ)",
    "INSERT INTO deals SELECT 'deal-' || i, CASE WHEN i % 2 = 0 THEN 'acme-ai' ELSE 'zeta-labs' "
    "END, i * 100.0, i * 1000.5, TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL 1 DAY "
    "FROM range(12) t(i)",
    "CREATE VIEW lab_totals AS SELECT lab, sum(capacity_mw) AS capacity_mw FROM deals GROUP BY lab",
    "CREATE SEQUENCE seq_ids",
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "log.duckdb"
    with duckdb.connect(str(path)) as con:
        for statement in SCHEMA:
            con.execute(statement)
    (tmp_path / "secret.csv").write_text(f"a,b\n{SECRET},1\n")
    return path


@pytest.fixture
def sandbox(db_path: Path) -> Iterator[SqlSandbox]:
    with SqlSandbox(db_path, timeout_s=TIMEOUT_S, max_rows=MAX_ROWS) as box:
        yield box


def fingerprint(directory: Path) -> dict[str, str]:
    """Every file under the directory with its SHA-256, to prove nothing was written."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --- queries that must answer -------------------------------------------------------------------


def test_select_returns_columns_types_and_json_friendly_rows(sandbox: SqlSandbox) -> None:
    result = sandbox.run(
        "SELECT slug, capacity_mw, usd, recorded_at FROM deals ORDER BY slug LIMIT 1"
    )

    assert result.columns == ["slug", "capacity_mw", "usd", "recorded_at"]
    assert result.types == ["VARCHAR", "DOUBLE", "DECIMAL(18,2)", "TIMESTAMP WITH TIME ZONE"]
    assert result.rows == [("deal-0", 0.0, 0.0, "2026-01-01 00:00:00+00")]
    assert result.truncated is False
    assert result.elapsed_ms > 0


def test_rows_are_cut_at_max_rows_and_marked_truncated(sandbox: SqlSandbox) -> None:
    result = sandbox.run("SELECT * FROM deals ORDER BY capacity_mw DESC")

    assert len(result.rows) == MAX_ROWS
    assert result.rows[0][0] == "deal-11"
    assert result.truncated is True


def test_exactly_max_rows_is_not_truncated(sandbox: SqlSandbox) -> None:
    result = sandbox.run(f"SELECT * FROM range({MAX_ROWS})")

    assert len(result.rows) == MAX_ROWS
    assert result.truncated is False


def test_an_endless_row_stream_returns_the_first_rows_at_once(sandbox: SqlSandbox) -> None:
    result = sandbox.run("SELECT * FROM range(1000000000000)")

    assert [r[0] for r in result.rows] == list(range(MAX_ROWS))
    assert result.truncated is True


def test_view_and_cte_answer(sandbox: SqlSandbox) -> None:
    result = sandbox.run(
        "WITH t AS (SELECT * FROM lab_totals) SELECT lab, capacity_mw FROM t ORDER BY lab"
    )

    assert result.rows == [("acme-ai", 3000.0), ("zeta-labs", 3600.0)]


@pytest.mark.parametrize(
    ("sql", "first_column"),
    [
        pytest.param("DESCRIBE deals", "column_name", id="describe"),
        pytest.param("SHOW TABLES", "name", id="show-tables"),
        pytest.param("SHOW deals", "column_name", id="show-table"),
        pytest.param("SUMMARIZE deals", "column_name", id="summarize"),
        pytest.param("EXPLAIN SELECT * FROM deals", "explain_key", id="explain"),
        pytest.param("EXPLAIN ANALYZE SELECT count(*) FROM deals", "explain_key", id="explain-an"),
        pytest.param("VALUES (1, 'a')", "col0", id="values"),
        pytest.param("FROM deals", "slug", id="from-first"),
        pytest.param(
            "PIVOT (SELECT lab, capacity_mw FROM deals) ON lab IN ('acme-ai') "
            "USING sum(capacity_mw)",
            "acme-ai",
            id="pivot",
        ),
        pytest.param("-- a comment\nSELECT 1 AS one;", "one", id="comment-and-semicolon"),
    ],
)
def test_every_kind_of_query_answers(sandbox: SqlSandbox, sql: str, first_column: str) -> None:
    result = sandbox.run(sql)

    assert result.columns[0] == first_column
    assert result.rows


def test_nested_and_odd_values_become_json_values(sandbox: SqlSandbox) -> None:
    result = sandbox.run(
        "SELECT [1, 2] AS l, {'k': 'v'} AS s, 'nan'::DOUBLE AS n, 'ab'::BLOB AS b, "
        "'infinity'::DATE AS d, 1 AS x, 2 AS x"
    )

    assert result.rows == [([1, 2], {"k": "v"}, "nan", "ab", "infinity", 1, 2)]
    assert result.columns == ["l", "s", "n", "b", "d", "x", "x"]


def test_huge_cells_are_cut(db_path: Path) -> None:
    with SqlSandbox(db_path, max_cell_chars=100) as box:
        result = box.run("SELECT repeat('x', 10000000) AS big, range(100000) AS many")

    big, many = result.rows[0]
    assert big == "x" * 100 + "…"
    assert isinstance(many, str) and len(many) == 101
    assert result.truncated is True


def test_total_result_size_is_capped(db_path: Path) -> None:
    with SqlSandbox(db_path, max_rows=1000, max_result_chars=10_000) as box:
        result = box.run("SELECT repeat('y', 1000) FROM range(1000)")

    assert 0 < len(result.rows) <= 10
    assert result.truncated is True


def test_to_csv_writes_header_and_rows() -> None:
    result = QueryResult(columns=["lab", "mw", "tags"], types=[], rows=[("acme, ai", 1.5, ["a"])])

    assert to_csv(result) == 'lab,mw,tags\r\n"acme, ai",1.5,"[""a""]"\r\n'


# --- attacks: each is refused or stopped, and nothing changes on disk ---------------------------

ATTACKS = [
    pytest.param("COPY deals TO '{tmp}/out.csv'", SqlRefusedError, id="copy-to-file"),
    pytest.param("COPY deals FROM '{tmp}/secret.csv'", SqlRefusedError, id="copy-from-file"),
    pytest.param(
        "COPY (SELECT 1) TO '{tmp}/out.parquet' (FORMAT parquet)",
        SqlRefusedError,
        id="copy-query-to-parquet",
    ),
    pytest.param("EXPORT DATABASE '{tmp}/export'", SqlRefusedError, id="export-database"),
    pytest.param("IMPORT DATABASE '{tmp}'", SqlRefusedError, id="import-database"),
    pytest.param("ATTACH '{tmp}/new.duckdb' AS n", SqlRefusedError, id="attach-new-file"),
    pytest.param("ATTACH ':memory:' AS m", SqlRefusedError, id="attach-memory"),
    pytest.param("DETACH log", SqlRefusedError, id="detach"),
    pytest.param("USE memory", SqlRefusedError, id="use"),
    pytest.param("INSTALL httpfs", SqlRefusedError, id="install-httpfs"),
    pytest.param("LOAD httpfs", SqlRefusedError, id="load-httpfs"),
    pytest.param("LOAD '{tmp}/evil.duckdb_extension'", SqlRefusedError, id="load-from-path"),
    pytest.param("UPDATE EXTENSIONS", SqlRefusedError, id="update-extensions"),
    pytest.param("SELECT * FROM read_csv('/etc/passwd')", SqlRefusedError, id="read-csv-etc"),
    pytest.param(
        "SELECT * FROM read_csv_auto('{tmp}/secret.csv')", SqlRefusedError, id="read-csv-auto-tmp"
    ),
    pytest.param("SELECT * FROM read_text('{tmp}/secret.csv')", SqlRefusedError, id="read-text"),
    pytest.param("SELECT * FROM read_blob('/etc/passwd')", SqlRefusedError, id="read-blob"),
    pytest.param("SELECT * FROM read_json('{tmp}/secret.csv')", SqlRefusedError, id="read-json"),
    pytest.param(
        "SELECT * FROM read_json_auto('{tmp}/secret.csv')", SqlRefusedError, id="read-json-auto"
    ),
    pytest.param(
        "SELECT * FROM read_ndjson_objects('{tmp}/secret.csv')",
        SqlRefusedError,
        id="read-ndjson-objects",
    ),
    pytest.param(
        "SELECT * FROM read_parquet('{tmp}/secret.csv')", SqlRefusedError, id="read-parquet"
    ),
    pytest.param(
        "SELECT * FROM parquet_metadata('{tmp}/secret.csv')", SqlRefusedError, id="parquet-metadata"
    ),
    pytest.param("SELECT * FROM sniff_csv('{tmp}/secret.csv')", SqlRefusedError, id="sniff-csv"),
    pytest.param("SELECT * FROM glob('{tmp}/*')", SqlRefusedError, id="glob"),
    pytest.param("SELECT * FROM '{tmp}/secret.csv'", SqlRefusedError, id="replacement-scan"),
    pytest.param(
        "SELECT * FROM read_csv('https://example.com/x.csv')", SqlRefusedError, id="read-csv-url"
    ),
    pytest.param("SELECT * FROM iceberg_scan('{tmp}/ice')", SqlQueryError, id="iceberg-scan"),
    pytest.param("SELECT * FROM delta_scan('{tmp}/delta')", SqlQueryError, id="delta-scan"),
    pytest.param(
        "SELECT * FROM query('COPY deals TO ''{tmp}/q.csv''')",
        SqlQueryError,
        id="query-function-copy",
    ),
    pytest.param("SET enable_external_access = true", SqlRefusedError, id="set-external-access"),
    pytest.param("SET lock_configuration = false", SqlRefusedError, id="set-unlock"),
    pytest.param("RESET memory_limit", SqlRefusedError, id="reset"),
    pytest.param("SET VARIABLE x = 1", SqlRefusedError, id="set-variable"),
    pytest.param("PRAGMA threads = 8", SqlRefusedError, id="pragma"),
    pytest.param("CREATE TABLE t2 (i INTEGER)", SqlRefusedError, id="create-table"),
    pytest.param(
        "CREATE TEMP TABLE t3 AS SELECT * FROM range(10)", SqlRefusedError, id="create-temp-table"
    ),
    pytest.param("CREATE VIEW v2 AS SELECT 1", SqlRefusedError, id="create-view"),
    pytest.param("CREATE MACRO m(a) AS a + 1", SqlRefusedError, id="create-macro"),
    pytest.param(
        "CREATE SECRET (TYPE s3, KEY_ID 'k', SECRET 's')", SqlRefusedError, id="create-secret"
    ),
    pytest.param("INSERT INTO deals (slug) VALUES ('evil')", SqlRefusedError, id="insert"),
    pytest.param("UPDATE deals SET capacity_mw = 0", SqlRefusedError, id="update"),
    pytest.param("DELETE FROM deals", SqlRefusedError, id="delete"),
    pytest.param(
        "MERGE INTO deals USING deals AS d ON deals.slug = d.slug WHEN MATCHED THEN DELETE",
        SqlRefusedError,
        id="merge",
    ),
    pytest.param("DROP TABLE deals", SqlRefusedError, id="drop"),
    pytest.param("ALTER TABLE deals ADD COLUMN evil INTEGER", SqlRefusedError, id="alter"),
    pytest.param("CHECKPOINT", SqlRefusedError, id="checkpoint"),
    pytest.param("FORCE CHECKPOINT", SqlRefusedError, id="force-checkpoint"),
    pytest.param("CALL checkpoint()", SqlRefusedError, id="call-checkpoint"),
    pytest.param("CALL pragma_version()", SqlRefusedError, id="call-harmless"),
    pytest.param("VACUUM", SqlRefusedError, id="vacuum"),
    pytest.param("ANALYZE", SqlRefusedError, id="analyze"),
    pytest.param("BEGIN TRANSACTION", SqlRefusedError, id="begin-transaction"),
    pytest.param("PREPARE p AS SELECT 1", SqlRefusedError, id="prepare"),
    pytest.param("SELECT 1; COPY deals TO '{tmp}/out.csv'", SqlRefusedError, id="two-statements"),
    pytest.param(
        "EXPLAIN ANALYZE COPY deals TO '{tmp}/out.csv'", SqlRefusedError, id="explain-analyze-copy"
    ),
    pytest.param(
        "EXPLAIN ANALYZE INSERT INTO deals (slug) VALUES ('x')",
        SqlRefusedError,
        id="explain-analyze-insert",
    ),
    pytest.param("PIVOT deals ON lab USING sum(capacity_mw)", SqlRefusedError, id="pivot-multi"),
    pytest.param("SELECT nextval('seq_ids')", SqlQueryError, id="nextval-writes"),
    pytest.param("SELECT getenv('HOME')", SqlQueryError, id="getenv"),
    pytest.param(
        "SELECT count(*) FROM range(1000000000) a, range(1000000000) b",
        SqlQueryError,
        id="cross-join-out-of-memory",
    ),
    pytest.param(
        "SELECT count(*) FROM range(1000000000) a, range(100000) b",
        SqlTimeoutError,
        id="cross-join-long",
    ),
    pytest.param(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        SqlTimeoutError,
        id="endless-recursive-cte",
    ),
    pytest.param("SELECT " + "1 + " * 10_000 + "1", SqlRefusedError, id="oversized-text"),
    pytest.param("", SqlRefusedError, id="empty"),
]


@pytest.mark.parametrize(("template", "expected"), ATTACKS)
def test_attack_is_refused_or_stopped_and_changes_nothing(
    sandbox: SqlSandbox, db_path: Path, template: str, expected: type[SqlSandboxError]
) -> None:
    directory = db_path.parent
    before = fingerprint(directory)
    started = time.perf_counter()

    with pytest.raises(expected) as caught:
        sandbox.run(template.format(tmp=directory))

    assert time.perf_counter() - started < TIMEOUT_S + 1.0
    assert str(caught.value) and SECRET not in str(caught.value)
    assert fingerprint(directory) == before
    assert sandbox.run("SELECT count(*) FROM deals").rows == [(12,)]


def test_refusal_names_the_statement_type(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlRefusedError) as caught:
        sandbox.run("COPY deals TO 'x.csv'")

    assert str(caught.value) == (
        "Only queries are allowed here (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); "
        "this was a COPY statement."
    )


def test_timeout_message_names_the_limit(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlTimeoutError, match=r"^The query ran longer than 0.5 s and was stopped"):
        sandbox.run("SELECT count(*) FROM range(1000000000000)")


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT * FROM checkpoint()", id="checkpoint-table-function"),
        pytest.param("SELECT * FROM duckdb_secrets()", id="list-secrets"),
        pytest.param("SELECT * FROM duckdb_settings()", id="list-settings"),
    ],
)
def test_harmless_introspection_runs_without_effect(
    sandbox: SqlSandbox, db_path: Path, sql: str
) -> None:
    before = fingerprint(db_path.parent)

    sandbox.run(sql)

    assert fingerprint(db_path.parent) == before


def test_settings_stay_locked_down(db_path: Path) -> None:
    with SqlSandbox(db_path) as box:
        result = box.run(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoload_known_extensions', 'autoinstall_known_extensions', "
            "'allow_community_extensions', 'temp_directory', 'access_mode') ORDER BY name"
        )

    assert dict(result.rows) == {  # type: ignore[arg-type]
        "access_mode": "read_only",
        "allow_community_extensions": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "enable_external_access": "false",
        "lock_configuration": "true",
        "temp_directory": "",
    }


# --- robustness ---------------------------------------------------------------------------------


def test_sandbox_answers_after_an_interrupted_query(sandbox: SqlSandbox) -> None:
    with pytest.raises(SqlTimeoutError):
        sandbox.run("SELECT count(*) FROM range(1000000000000)")

    assert sandbox.run("SELECT count(*) FROM deals").rows == [(12,)]


def test_four_threads_query_at_once(sandbox: SqlSandbox) -> None:
    barrier = threading.Barrier(4)
    results: dict[int, object] = {}

    def query(n: int) -> None:
        barrier.wait()
        try:
            if n == 0:
                sandbox.run("SELECT count(*) FROM range(1000000000000)")
            else:
                results[n] = sandbox.run(f"SELECT count(*) + {n} FROM deals").rows
        except SqlSandboxError as exc:
            results[n] = exc

    threads = [threading.Thread(target=query, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert isinstance(results[0], SqlTimeoutError)
    assert [results[n] for n in (1, 2, 3)] == [[(13,)], [(14,)], [(15,)]]


def test_closed_sandbox_refuses_queries(db_path: Path) -> None:
    box = SqlSandbox(db_path)
    box.close()

    with pytest.raises(RuntimeError):
        box.run("SELECT 1")


# --- shared instance: the bot's writer and the sandbox in one process ---------------------------


@pytest.fixture
def writer(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(db_path), config=sandbox_config())
    con.execute("SET lock_configuration = true")
    yield con
    con.close()


def test_shared_sandbox_sees_the_writers_commits(writer: duckdb.DuckDBPyConnection) -> None:
    box = SqlSandbox.from_connection(writer, timeout_s=TIMEOUT_S)

    writer.execute("INSERT INTO deals (slug) VALUES ('deal-new')")

    assert box.run("SELECT count(*) FROM deals").rows == [(13,)]


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT nextval('seq_ids')", id="nextval"),
        pytest.param("SELECT * FROM read_csv('/etc/passwd')", id="read-file"),
        pytest.param("INSERT INTO deals (slug) VALUES ('evil')", id="insert"),
    ],
)
def test_shared_sandbox_cannot_write_or_read_files(
    writer: duckdb.DuckDBPyConnection, sql: str
) -> None:
    box = SqlSandbox.from_connection(writer, timeout_s=TIMEOUT_S)

    with pytest.raises(SqlSandboxError):
        box.run(sql)

    assert writer.execute("SELECT count(*) FROM deals").fetchall() == [(12,)]
    assert writer.execute("SELECT nextval('seq_ids')").fetchall() == [(1,)]


def test_shared_sandbox_requires_a_locked_instance(db_path: Path) -> None:
    with duckdb.connect(str(db_path)) as con, pytest.raises(ValueError, match="external"):
        SqlSandbox.from_connection(con)
