"""Read-only, time-limited SQL over the event log, shared by the CLI, Discord `/sql` and the API."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self, TypeAlias

import duckdb
from duckdb.sqltypes import DuckDBPyType

from store.errors import StoreError

__all__ = [
    "QueryResult",
    "SqlQueryError",
    "SqlRefusedError",
    "SqlSandbox",
    "SqlSandboxError",
    "SqlTimeoutError",
    "sandbox_config",
    "to_csv",
]

# Only these statement types are run; DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first and PIVOT/
# UNPIVOT with an explicit IN list all parse as SELECT in DuckDB 2.0.
ALLOWED_TYPES = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
ALLOWED_WORDS = "SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN"

# Longer text is refused before parsing; a real question to the log is far shorter.
MAX_SQL_CHARS = 20_000
# After a timeout, how long we wait for DuckDB to honour the interrupt before giving up on it.
INTERRUPT_GRACE_S = 1.0

BEGIN_READ_ONLY = "BEGIN TRANSACTION READ ONLY"
ROLLBACK = "ROLLBACK"
SET_UTC = "SET GLOBAL TimeZone = 'UTC'"
LOCK_CONFIGURATION = "SET lock_configuration = true"
CURRENT_SETTING = "SELECT current_setting(?)"

# EXPLAIN [ANALYZE] or EXPLAIN (options) in front of the statement it explains.
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+|\((?:[^()]|\([^()]*\))*\)\s*)?", re.I)

# Settings that must hold on a shared instance for the sandbox's guarantees to hold.
_REQUIRED_SETTINGS: dict[str, bool] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}

_NATIVE_TYPE_IDS = frozenset(
    {
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "float",
        "double",
    }
)
_NESTED_TYPE_IDS = frozenset({"list", "struct", "map", "array", "union"})

# A JSON-friendly value: what json.dumps writes without help.
Cell: TypeAlias = "None | bool | int | float | str | list[Cell] | dict[str, Cell]"


class SqlSandboxError(StoreError):
    """Raised when a sandboxed query cannot give an answer; the message is safe to show a user."""


class SqlRefusedError(SqlSandboxError):
    """Raised when a statement is not a single read-only query, or reaches for files or network."""


class SqlTimeoutError(SqlSandboxError):
    """Raised when a query runs past the sandbox's time limit and is interrupted."""


class SqlQueryError(SqlSandboxError):
    """Raised when DuckDB rejects or fails a query (syntax, unknown table, out of memory, ...)."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """At most max_rows rows of JSON-friendly values; `truncated` says rows or cells were cut."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    truncated: bool = False
    elapsed_ms: float = 0.0


def sandbox_config(
    *, memory_limit: str = "512MB", threads: int = 1
) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB config that denies files, network and extensions (lock it after connecting)."""
    return {
        "enable_external_access": False,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "memory_limit": memory_limit,
        # An empty temp_directory forbids spilling, so a huge join fails on memory_limit instead
        # of filling the disk.
        "temp_directory": "",
        "threads": threads,
    }


class SqlSandbox:
    """Runs one read-only query at a time per call, safely from any number of threads."""

    def __init__(
        self,
        db_path: Path,
        *,
        timeout_s: float = 5.0,
        max_rows: int = 1000,
        memory_limit: str = "512MB",
        threads: int = 1,
        max_cell_chars: int = 10_000,
        max_result_chars: int = 1_000_000,
    ) -> None:
        root = duckdb.connect(
            str(db_path),
            read_only=True,
            config=sandbox_config(memory_limit=memory_limit, threads=threads),
        )
        try:
            # TimeZone is not accepted as a connect option (ICU registers it later), so it is set
            # here, and only then is the configuration locked against SET/RESET/PRAGMA.
            root.execute(SET_UTC)
            root.execute(LOCK_CONFIGURATION)
        except BaseException:
            root.close()
            raise
        self._init(root, True, timeout_s, max_rows, max_cell_chars, max_result_chars)

    @classmethod
    def from_connection(
        cls,
        con: duckdb.DuckDBPyConnection,
        *,
        timeout_s: float = 5.0,
        max_rows: int = 1000,
        max_cell_chars: int = 10_000,
        max_result_chars: int = 1_000_000,
    ) -> Self:
        """Share an instance opened elsewhere in this process with `sandbox_config()` and locked.

        DuckDB refuses a second, differently configured open of a file that this process already
        holds, so the bot's sandbox must share the writer's instance; every query then runs in a
        READ ONLY transaction that is rolled back.
        """
        for name, wanted in _REQUIRED_SETTINGS.items():
            row = con.cursor().execute(CURRENT_SETTING, [name]).fetchone()
            if row is None or bool(row[0]) is not wanted:
                raise ValueError(f"the shared DuckDB instance must have {name}={wanted}")
        sandbox = cls.__new__(cls)
        sandbox._init(con, False, timeout_s, max_rows, max_cell_chars, max_result_chars)
        return sandbox

    def _init(
        self,
        root: duckdb.DuckDBPyConnection,
        owns_root: bool,
        timeout_s: float,
        max_rows: int,
        max_cell_chars: int,
        max_result_chars: int,
    ) -> None:
        self._root = root
        self._owns_root = owns_root
        self._timeout_s = timeout_s
        self._max_rows = max_rows
        self._max_cell_chars = max_cell_chars
        self._max_result_chars = max_result_chars
        # A DuckDBPyConnection is not thread-safe; the lock guards only cursor() and close(), each
        # query then runs on its own cursor (0.03 ms to make, against ~9 ms to reopen the file).
        self._lock = threading.Lock()
        self._closed = False

    def run(self, sql: str) -> QueryResult:
        """Check, run and fetch one query within the time limit, or raise a SqlSandboxError."""
        started = time.perf_counter()
        cursor = self._cursor()
        statement_type = self._check(cursor, sql)
        future: Future[QueryResult] = Future()
        state = _CallState(cursor)
        worker = threading.Thread(
            target=self._work,
            args=(state, sql, statement_type, started, future),
            name="sql-sandbox",
            daemon=True,  # a query DuckDB cannot interrupt must not keep the process alive
        )
        worker.start()
        try:
            return future.result(timeout=self._timeout_s)
        except FutureTimeoutError:
            state.interrupt()
            worker.join(INTERRUPT_GRACE_S)
            raise SqlTimeoutError(
                f"The query ran longer than {self._timeout_s:g} s and was stopped."
            ) from None

    def close(self) -> None:
        """Stop accepting queries; close the database only if this sandbox opened it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_root:
                self._root.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the SQL sandbox is closed")
            return self._root.cursor()

    def _check(self, cursor: duckdb.DuckDBPyConnection, sql: str) -> duckdb.StatementType:
        """Classify with DuckDB's own parser; refuse all but a single query."""
        if not isinstance(sql, str) or not _is_utf8(sql):
            cursor.close()
            # DuckDB takes UTF-8 only: a lone surrogate (JSON may escape one as "\ud800") would
            # make its binding raise TypeError instead of a refusal.
            raise SqlRefusedError(
                "The query must be text of valid Unicode (it holds a lone surrogate, "
                "\\ud800-\\udfff)."
                if isinstance(sql, str)
                else "The query must be text."
            )
        if len(sql) > MAX_SQL_CHARS:
            cursor.close()
            raise SqlRefusedError(f"The query is longer than {MAX_SQL_CHARS} characters.")
        try:
            statement_type = _single_statement_type(cursor, sql)
            if statement_type is duckdb.StatementType.EXPLAIN:
                _check_explained(cursor, sql)
        except SqlSandboxError:
            cursor.close()
            raise
        return statement_type

    def _work(
        self,
        state: _CallState,
        sql: str,
        statement_type: duckdb.StatementType,
        started: float,
        future: Future[QueryResult],
    ) -> None:
        try:
            result = self._execute(state.cursor, sql, statement_type, started)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread, which re-raises it
            future.set_exception(exc)
        else:
            future.set_result(result)
        finally:
            state.close()

    def _execute(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        statement_type: duckdb.StatementType,
        started: float,
    ) -> QueryResult:
        try:
            # Read-only even on a read-write instance shared with the writer: nextval() and any
            # other write fail, and the rollback leaves nothing behind.
            cursor.execute(BEGIN_READ_ONLY)
            try:
                return self._fetch(cursor, sql, statement_type, started)
            finally:
                # After an interrupt the transaction may already be gone; closing ends it anyway.
                with contextlib.suppress(duckdb.Error):
                    cursor.execute(ROLLBACK)
        except duckdb.InterruptException as exc:
            raise SqlTimeoutError(
                f"The query ran longer than {self._timeout_s:g} s and was stopped."
            ) from exc
        except duckdb.OutOfMemoryException as exc:
            raise SqlQueryError(
                "The query needed more memory than the sandbox allows and was stopped."
            ) from exc
        except duckdb.PermissionException as exc:
            raise SqlRefusedError(
                "This query tries to read files or reach the network, which is not allowed here."
            ) from exc
        except duckdb.Error as exc:
            raise SqlQueryError(_first_line(exc)) from exc
        except UnicodeDecodeError as exc:
            # DuckDB 2.0 cuts the input it quotes in some errors (a failed CAST to JSON) at a
            # byte count, mid-character; the Python binding then fails to decode the message.
            raise SqlQueryError(
                "The query failed, and DuckDB's error message could not be read (it cut a "
                "character in half); check the values the query converts, e.g. a CAST to JSON."
            ) from exc

    def _fetch(
        self,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        statement_type: duckdb.StatementType,
        started: float,
    ) -> QueryResult:
        limit = self._max_rows + 1
        if statement_type is duckdb.StatementType.EXPLAIN:
            # EXPLAIN is not a subquery; its two VARCHAR columns are capped below, in Python.
            cursor.execute(sql)
            columns = [str(d[0]) for d in cursor.description or []]
            types = ["VARCHAR"] * len(columns)
            kinds = ["text"] * len(columns)
            raw = cursor.fetchmany(limit)
        else:
            # The relation wraps the query as a subquery, so DuckDB itself renders every value as
            # JSON-friendly text or numbers, cuts long cells, and stops after max_rows + 1 rows.
            relation = cursor.sql(sql)
            columns = list(relation.columns)
            types = [str(t) for t in relation.types]
            exprs, kinds = self._projection(relation.types)
            raw = relation.project(", ".join(exprs)).limit(limit).fetchall()
        rows, truncated = self._convert(raw, kinds)
        return QueryResult(
            columns=columns,
            types=types,
            rows=rows,
            truncated=truncated,
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    def _projection(self, types: list[DuckDBPyType]) -> tuple[list[str], list[str]]:
        """SQL per result column, by position (`#n`) since names may repeat or be odd."""
        cap = self._max_cell_chars + 1
        exprs: list[str] = []
        kinds: list[str] = []
        for n, sql_type in enumerate(types, start=1):
            type_id = str(sql_type.id)
            if type_id in _NATIVE_TYPE_IDS:
                exprs.append(f"#{n} AS c{n}")
                kinds.append("native")
            elif type_id == "decimal":
                exprs.append(f"#{n}::DOUBLE AS c{n}")
                kinds.append("native")
            elif type_id in _NESTED_TYPE_IDS:
                exprs.append(f"left(to_json(#{n})::VARCHAR, {cap}) AS c{n}")
                kinds.append("json")
            elif type_id == "timestamp with time zone":
                # Rendered in UTC whatever the shared instance's TimeZone is.
                exprs.append(
                    f"CASE WHEN isfinite(#{n}) THEN timezone('UTC', #{n})::VARCHAR || '+00'"
                    f" ELSE #{n}::VARCHAR END AS c{n}"
                )
                kinds.append("text")
            else:
                exprs.append(f"left(#{n}::VARCHAR, {cap}) AS c{n}")
                kinds.append("text")
        return exprs, kinds

    def _convert(
        self, raw: list[tuple[object, ...]], kinds: list[str]
    ) -> tuple[list[tuple[Cell, ...]], bool]:
        truncated = len(raw) > self._max_rows
        budget = self._max_result_chars
        rows: list[tuple[Cell, ...]] = []
        for raw_row in raw[: self._max_rows]:
            row: list[Cell] = []
            for value, kind in zip(raw_row, kinds, strict=True):
                cell, cut, size = self._cell(value, kind)
                truncated = truncated or cut
                budget -= size
                row.append(cell)
            if budget < 0:
                return rows, True
            rows.append(tuple(row))
        return rows, truncated

    def _cell(self, value: object, kind: str) -> tuple[Cell, bool, int]:
        """A JSON-friendly cell, whether it was cut, and its size in characters."""
        if value is None:
            return None, False, 4
        if isinstance(value, str):
            if len(value) > self._max_cell_chars:
                return value[: self._max_cell_chars] + "…", True, self._max_cell_chars
            if kind == "json":
                decoded: Cell = json.loads(value)
                return decoded, False, len(value)
            return value, False, len(value)
        if isinstance(value, float) and not math.isfinite(value):
            # Strict JSON has no NaN or Infinity.
            return str(value), False, 8
        if isinstance(value, bool | int | float):
            return value, False, 8
        return str(value), False, len(str(value))


class _CallState:
    """One call's cursor, so that interrupt() and close() never race each other."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor
        self._lock = threading.Lock()
        self._closed = False

    def interrupt(self) -> None:
        with self._lock:
            if not self._closed:
                self.cursor.interrupt()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.cursor.close()


def to_csv(result: QueryResult) -> str:
    """The result as RFC 4180 CSV with a header row; nested cells are written as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(
            json.dumps(c, ensure_ascii=False) if isinstance(c, list | dict) else c for c in row
        )
    return out.getvalue()


def _single_statement_type(cursor: duckdb.DuckDBPyConnection, sql: str) -> duckdb.StatementType:
    try:
        statements = cursor.extract_statements(sql)
        types = [statement.type for statement in statements]
    except duckdb.ParserException as exc:
        raise SqlQueryError(_first_line(exc)) from exc
    except (duckdb.Error, ValueError) as exc:
        # DuckDB knows statement types (UPDATE EXTENSIONS, ...) that the Python enum lacks.
        raise SqlRefusedError(
            f"Only queries are allowed here ({ALLOWED_WORDS}); this statement is not one."
        ) from exc
    if not types:
        raise SqlRefusedError("The query is empty.")
    if len(types) > 1:
        raise SqlRefusedError(
            f"Send one statement at a time; this text holds {len(types)} statements."
        )
    (statement_type,) = types
    if statement_type is duckdb.StatementType.MULTI:
        raise SqlRefusedError(
            "This statement expands into several (a PIVOT without an IN list does); "
            "list the pivot values with ON col IN (...)."
        )
    if statement_type not in ALLOWED_TYPES:
        raise SqlRefusedError(
            f"Only queries are allowed here ({ALLOWED_WORDS}); "
            f"this was a {statement_type.name.replace('_', ' ')} statement."
        )
    return statement_type


def _check_explained(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    """EXPLAIN ANALYZE runs its statement, so what it explains must itself be a query."""
    (statement,) = cursor.extract_statements(sql)
    prefix = _EXPLAIN_PREFIX.match(statement.query)
    inner = statement.query[prefix.end() :] if prefix else ""
    try:
        inner_type = _single_statement_type(cursor, inner)
    except SqlSandboxError:
        inner_type = None
    if inner_type is not duckdb.StatementType.SELECT:
        raise SqlRefusedError("EXPLAIN is allowed here only in front of a query (SELECT, WITH).")


def _first_line(exc: BaseException) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # DuckDB quotes the query ("syntax error at or near ..."): control characters in it would
    # reach the user's terminal, and a lone surrogate could not be printed at all.
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in line)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
