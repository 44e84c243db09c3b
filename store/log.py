"""The event log: atomic batch appends with optimistic concurrency and idempotency, and reads."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from events.envelope import NewEvent, RecordedEvent
from events.payloads import (
    DEAL_FACT_TYPES,
    CounterpartyJoined,
    DealReported,
    DealsLinked,
    DealTermsRevised,
    EventPayload,
    EventRetracted,
)
from store.clock import Clock, SystemClock
from store.errors import (
    ConcurrencyError,
    DatabaseLockedError,
    IdempotencyKeyReuseError,
    InvalidEventError,
    StoreError,
    UnknownStreamError,
)
from store.migrations import migrate
from store.projections import (
    projected_seq,
    rebuild_projections,
    rebuild_threshold,
    refresh_projections,
    set_checkpoint,
    set_checkpoint_to_head,
)
from store.rows import (
    COLUMNS,
    ENVELOPE_SELECT,
    INSERT_FROM_ARROW,
    STAGED_SCHEMA,
    build_row,
    deal_id_of,
    parse_payload,
    payload_json,
    recorded_from_row,
    rows_to_arrow,
    values_insert,
)
from store.settings import DuckDBSettings
from store.stream_heads import StreamHeads

log = logging.getLogger(__name__)

SELECT_HEAD = "SELECT coalesce(max(seq), 0) FROM events"
# One key: an index lookup. Several: a join that DuckDB may answer with a scan of the keys, so
# the append path looks keys up only when an insert finds one already stored (see append_many).
SELECT_BY_KEY = ENVELOPE_SELECT + " WHERE idempotency_key = $key"
SELECT_BY_KEYS = ENVELOPE_SELECT + " WHERE idempotency_key IN (SELECT unnest($keys)) ORDER BY seq"
SELECT_BY_SEQ = ENVELOPE_SELECT + " WHERE seq = $seq"
SELECT_STREAM = ENVELOPE_SELECT + " WHERE stream_id = $stream AND version >= $from ORDER BY version"
SELECT_AFTER = ENVELOPE_SELECT + " WHERE seq > $after ORDER BY seq LIMIT $limit"
SELECT_EVENT = ENVELOPE_SELECT + " WHERE event_id = $id"
# What a retraction must know of its target, in one query: its stream, its type, and whether a
# retraction of it is already stored.
SELECT_RETRACTION_TARGET = """
SELECT t.stream_id, t.type,
       EXISTS (SELECT 1 FROM events r
               WHERE r.type = 'EventRetracted' AND r.target_event_id = t.event_id)
FROM events t WHERE t.event_id = $id
LIMIT 1
"""
SELECT_COUNT = "SELECT count(*) FROM events"

# The unique indexes of the log (store/sql/005_event_indexes.sql). A bulk import into an empty
# log drops them before it starts and builds them again once from the loaded rows, right after
# its commit (it checks both keys by query before committing: _check_unique); an import
# interrupted in between leaves them missing, and opening the store rebuilds them.
EVENT_INDEXES = {
    "events_stream_version": (
        "CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version)"
    ),
    "events_idempotency_key": (
        "CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key)"
    ),
}
SELECT_EVENT_INDEXES = (
    "SELECT index_name FROM duckdb_indexes() "
    "WHERE table_name = 'events' AND database_name = current_database()"
)
# Arrow tables reach SQL through DuckDB's replacement scan: a local variable of the Python frame
# that runs the query, named as the table in the query (bulk_in, bulk_bases, staged). Not
# cur.register(): a view registered in a transaction keeps its table alive until the commit,
# so a streamed import would hold every chunk in memory.
# Appends of up to this many rows go in as one INSERT ... VALUES; larger ones through Arrow,
# which costs a fixed ~0.5 ms more but much less per row.
VALUES_INSERT_ROWS = 8

# -- bulk import (EventStore.import_chunks): the checks of _plan, done in SQL chunk by chunk ---
# (Versions and labs of a chunk are numbered in Arrow: EventStore._number.)
BULK_INSERT = (
    "INSERT INTO events SELECT "
    + ", ".join(
        "$now::TIMESTAMPTZ"
        if c == "recorded_at"
        else f"{c}::UUID"
        if c in ("event_id", "target_event_id")
        else f"{c}::JSON"
        if c == "payload"
        else c
        for c in COLUMNS
    )
    + " FROM bulk_in"
)
# Events of a chunk whose idempotency key is stored already (or came earlier in the import,
# whose rows are in the table by now): they are not stored again.
BULK_DUPLICATES = """
SELECT b.pos, e.seq,
       e.stream_id = b.stream_id AND e.type = b.type AND e.payload::VARCHAR = b.payload AS same
FROM bulk_in b JOIN events e ON e.idempotency_key = b.idempotency_key
ORDER BY b.pos
"""
# Whether the import so far repeats a key (asked when it has no unique index to say so).
BULK_ANY_REPEAT = """
SELECT 1 FROM events WHERE seq > $head GROUP BY idempotency_key HAVING count(*) > 1 LIMIT 1
"""
# Whether the import repeats an idempotency key, and a (stream, version): the checks of the
# unique indexes, asked before the commit of an import that builds them after it.
BULK_REPEATS = f"""
SELECT EXISTS ({BULK_ANY_REPEAT}),
       EXISTS (SELECT 1 FROM events WHERE seq > $head
               GROUP BY stream_id, version HAVING count(*) > 1)
"""
# Events of a chunk whose key an earlier event of the chunk has, with that event's stream/type.
BULK_REPEATED_KEYS = """
SELECT pos, idempotency_key, first_stream, first_type, same FROM (
    SELECT pos, idempotency_key, row_number() OVER w AS k,
           first_value(stream_id) OVER w AS first_stream,
           first_value(type) OVER w AS first_type,
           stream_id = first_value(stream_id) OVER w AND type = first_value(type) OVER w
               AND payload = first_value(payload) OVER w AS same
    FROM bulk_in
    WINDOW w AS (PARTITION BY idempotency_key ORDER BY pos)
)
WHERE k > 1
ORDER BY pos
"""
# The first event of the import (seq > $head) that the per-event checks of _plan would refuse,
# with a code in the order _plan checks (see _bulk_error).
BULK_VIOLATION = """
SELECT seq, code, stream_id, detail, version FROM (
    SELECT seq, CASE WHEN type = 'DealReported' THEN 1 ELSE 2 END AS code, stream_id,
           NULL::VARCHAR AS detail, version
    FROM events
    WHERE seq > $head AND deal_id IS NOT NULL
      AND ((type = 'DealReported' AND version > 1)
           OR (type <> 'DealReported' AND version = 1 AND list_contains($facts, type)))
    UNION ALL
    SELECT e.seq, CASE WHEN e.link_other = e.deal_id THEN 3 ELSE 4 END, e.stream_id,
           e.link_other, e.version
    FROM events e
    WHERE e.seq > $head AND e.type = 'DealsLinked'
      AND (e.link_other = e.deal_id OR NOT EXISTS (
          SELECT 1 FROM events o
          WHERE o.stream_id = 'deal:' || e.link_other AND o.seq < e.seq))
    UNION ALL
    SELECT seq, 5, stream_id, lab, version
    FROM events
    WHERE seq > $head AND type IN ('CounterpartyJoined', 'DealTermsRevised')
      AND list_contains(list_transform(counterparties, lambda c: c.party), lab)
    UNION ALL
    SELECT r.seq,
           CASE WHEN t.seq IS NULL OR t.seq > r.seq THEN 6
                WHEN t.stream_id <> r.stream_id THEN 7
                WHEN t.type = 'EventRetracted' THEN 8
                ELSE 9 END,
           r.stream_id, r.target_event_id::VARCHAR || '|' || coalesce(t.stream_id, ''), r.version
    FROM events r LEFT JOIN events t ON t.event_id = r.target_event_id
    WHERE r.seq > $head AND r.type = 'EventRetracted'
      AND (t.seq IS NULL OR t.seq > r.seq OR t.stream_id <> r.stream_id
           OR t.type = 'EventRetracted'
           OR EXISTS (SELECT 1 FROM events x
                      WHERE x.type = 'EventRetracted' AND x.seq < r.seq
                        AND x.target_event_id = r.target_event_id))
)
ORDER BY seq, code
LIMIT 1
"""
# How many deals an import touched, counted up to a limit (past it, the import rebuilds the
# read models instead of refreshing them).
BULK_DEALS_COUNT = """
SELECT count(*) FROM (
    SELECT DISTINCT deal_id FROM events WHERE seq > $head AND deal_id IS NOT NULL LIMIT $limit
)
"""
# DuckDB's row group: the import inserts this many rows at a time (see _row_groups).
ROW_GROUP_ROWS = 122_880
# Rows per chunk when import_staged is handed one large table.
IMPORT_CHUNK_ROWS = ROW_GROUP_ROWS
# DuckDB's memory limit while an import into an empty log writes and checks its rows: what it
# has written is on disk already, so it need not keep it (by default it keeps every block it
# wrote, up to 80 % of RAM), and its inserts and checks spill, if they must, at little cost (at
# 1M events, the same times as without a limit). The fold of the read models that follows
# runs without it: it spills slowly (3x the time at 10M events).
IMPORT_MEMORY_LIMIT = "64MB"
# The head (version, lab) of a stream the log does not hold.
_NO_HEAD: tuple[int, None] = (0, None)

# An event may be dated a little ahead of the store's clock (a date typed in a timezone ahead of
# UTC), but not further: the log holds what happened, not what is planned.
FUTURE_TOLERANCE = timedelta(days=1)
# The read models may lag the log by this many events at most: an append that leaves them
# further behind catches them up itself (a crash then costs at most this much refolding).
CATCH_UP_AFTER_EVENTS = 20_000
READ_PAGE = 10_000
RECORDED_FIELDS = (
    "seq",
    "event_id",
    "stream_id",
    "version",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "source_url",
    "source_title",
)


@dataclass(frozen=True)
class AppendResult:
    """What an append did: the events it stored, and the ones it already had (same key)."""

    recorded: tuple[RecordedEvent, ...] = ()
    duplicates: tuple[RecordedEvent, ...] = ()

    @property
    def all_duplicates(self) -> bool:
        return not self.recorded and bool(self.duplicates)


@dataclass(frozen=True)
class ImportResult:
    """What a bulk import did: the events it stored (seq first_seq..last_seq, gap-free) and how
    many it did not store because their idempotency key was stored already or came earlier in
    the import (stored once, not again)."""

    imported: int = 0
    duplicates: int = 0
    first_seq: int | None = None
    last_seq: int | None = None


class ImportRefusedError(StoreError):
    """A bulk import refused an event, so nothing of the import was written.

    `position` is the event's place among all the rows the import was given (0-based, across
    chunks); `error` is the StoreError that append would raise for it (same message).
    """

    def __init__(self, position: int, error: StoreError) -> None:
        super().__init__(str(error))
        self.position = position
        self.error = error


@dataclass
class _Plan:
    """The rows one batch will write, worked out before anything is written."""

    rows: list[dict[str, object]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    duplicates: list[RecordedEvent] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    labs: dict[str, str] = field(default_factory=dict)
    repeats: list[str] = field(default_factory=list)  # keys offered again within the append
    retracting: set[UUID] = field(default_factory=set)


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database file with the settings every computewatch connection uses."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise DatabaseLockedError(
                f"{path} is open for writing in another process (is the bot running?). "
                "Use the running bot's API, or the read-only snapshot, to query it."
            ) from exc
        raise StoreError(f"cannot open {path}: {exc}") from exc
    # GLOBAL: cursors are connections of their own and would otherwise use the host's zone.
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    return con


class EventStore:
    """The append-only event log in one DuckDB file; the single writer of that file.

    Appends are serialised by a lock and each batch commits in one transaction or not at all.
    Reads use a cursor of their own, so they may come from any thread.
    """

    def __init__(self, path: Path | str, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = connect(self.path)
        # Re-entrant: a reader holding it (a snapshot, a backup) catches the read models up.
        self._write_lock = threading.RLock()
        self._retracting_in_group: set[UUID] = set()
        self._closed = False
        migrate(self._con)
        self._ensure_indexes(self._con.cursor())
        self._load_caches()
        # The read models fold the log up to here; after a crash they may lag the log.
        self._projected: int = projected_seq(self._con.cursor())
        self.catch_up()

    # -- lifecycle ---------------------------------------------------------------------------
    def _load_caches(self) -> None:
        # The writer is the only one that appends, so what these answer is authoritative; the
        # unique key on (stream_id, version) still guards against a mistake here. Versions and
        # labs come from a compact snapshot of the read models and the writes since
        # (store/stream_heads.py), not from dicts of every stream.
        cur = self._con.cursor()
        self._head: int = cur.execute(SELECT_HEAD).fetchone()[0]  # type: ignore[index]
        self._heads = StreamHeads(cur, cursor=self._log_cursor, folded=lambda: self._projected)

    def close(self) -> None:
        with self._write_lock:
            if not self._closed:
                try:  # whoever opens the file next finds the read models current
                    self._catch_up_locked()
                except StoreError:
                    log.exception("the read models did not catch up before closing")
                self._closed = True
                self._con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the store's connection for one thread's reads (store-internal modules).

        The read models are caught up with the log first, so a read sees every event appended
        before it asked (read your writes)."""
        self.catch_up()
        return self._log_cursor()

    def _log_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for reads of the events table alone (no read model: no catch-up)."""
        if self._closed:
            raise StoreError("the event store is closed")
        return self._con.cursor()

    @property
    def projected(self) -> int:
        """The seq up to which the read models have folded the log."""
        return self._projected

    def catch_up(self) -> None:
        """Fold the events appended since the checkpoint into the read models, in one
        transaction of their own (a no-op when they are current)."""
        if self._projected >= self._head:  # read without the lock: ints are swapped whole
            return
        with self._write_lock:
            if self._closed:
                raise StoreError("the event store is closed")
            self._catch_up_locked()

    def _catch_up_locked(self) -> None:
        head, after = self._head, self._projected
        if after >= head:
            return
        cur = self._con.cursor()
        try:
            self._project(cur, lambda: refresh_projections(cur, after_seq=after), head)
        except duckdb.Error:
            # A refresh that fails is a bug of ours; the log is intact, so fold it all again.
            log.exception("the read models failed to catch up from seq %d; rebuilding", after)
            try:
                self._project(cur, lambda: rebuild_projections(cur), head)
            except duckdb.Error as exc:
                raise StoreError(f"the read models cannot be brought up to date: {exc}") from exc
        self._projected = head

    @staticmethod
    def _project(cur: duckdb.DuckDBPyConnection, fold: Callable[[], None], head: int) -> None:
        cur.execute("BEGIN TRANSACTION")
        try:
            fold()
            set_checkpoint(cur, head)
            cur.execute("COMMIT")
        except BaseException:
            _rollback(cur)
            raise

    # -- reads -------------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The seq of the last event appended (0 for an empty log)."""
        return self._head

    def stream_version(self, stream_id: str) -> int:
        return self._heads.head_of(stream_id)[0]

    def deal_ids(self) -> list[str]:
        """Every deal reported (retracted ones too), sorted."""
        return self._heads.deal_ids()

    def lab_of(self, deal_id: str) -> str | None:
        return self._heads.head_of(f"deal:{deal_id}")[1]

    def count(self) -> int:
        return self._log_cursor().execute(SELECT_COUNT).fetchone()[0]  # type: ignore[index,no-any-return]

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        rows = self._log_cursor().execute(
            SELECT_STREAM, {"stream": stream_id, "from": from_version}
        )
        return [recorded_from_row(r) for r in rows.fetchall()]

    def read_all(self, after: int = 0, limit: int | None = None) -> Iterator[RecordedEvent]:
        """Events in seq order after position `after`, read page by page."""
        cur = self._log_cursor()
        left = limit
        while left is None or left > 0:
            page = READ_PAGE if left is None else min(READ_PAGE, left)
            rows = cur.execute(SELECT_AFTER, {"after": after, "limit": page}).fetchall()
            for row in rows:
                yield recorded_from_row(row)
            if len(rows) < page:
                return
            after = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def get_event(self, event_id: UUID | str) -> RecordedEvent | None:
        row = self._log_cursor().execute(SELECT_EVENT, {"id": str(event_id)}).fetchone()
        return recorded_from_row(row) if row else None

    # -- appends -----------------------------------------------------------------------------
    def append(self, events: Sequence[NewEvent]) -> AppendResult:
        """Append a batch atomically; events whose key is already stored are reported, not stored.

        Raises ConcurrencyError when an event's expected_version does not hold, and
        InvalidEventError / UnknownStreamError for events that cannot be appended; in every
        such case nothing of the batch is written.
        """
        result = self.append_many([events])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def append_many(self, batches: Sequence[Sequence[NewEvent]]) -> list[AppendResult | StoreError]:
        """Commit several independent batches together (group commit), each all or nothing.

        A batch that fails its checks gets its error in the result list and writes nothing;
        the others are still committed, in one transaction, so that many small appends cost
        one commit.

        Idempotency keys are not looked up beforehand: the unique index on them notices a
        stored key as the rows go in. Only then, or when a batch is refused (which a stored key
        could explain: a replayed DealReported, a replayed expected version), is the group
        planned again knowing the stored events of its keys, and written.
        """
        with self._write_lock:
            if self._closed:
                raise StoreError("the event store is closed")
            cur = self._con.cursor()
            now = self.clock.now()
            if self._head:
                try:
                    return self._append_group(cur, batches, now, None)
                except _KeyTaken:
                    pass
            keys = [e.key for batch in batches for e in batch if isinstance(e, NewEvent)]
            return self._append_group(cur, batches, now, self._stored_by_key(cur, keys))

    def _append_group(
        self,
        cur: duckdb.DuckDBPyConnection,
        batches: Sequence[Sequence[NewEvent]],
        now: object,
        stored: dict[str, RecordedEvent] | None,
    ) -> list[AppendResult | StoreError]:
        """Plan and write a group; stored=None: assume no key is stored (raise _KeyTaken if
        that may be wrong)."""
        optimistic = stored is None
        versions: dict[str, int] = {}  # stream versions as the planned batches leave them
        labs: dict[str, str] = {}
        keys_planned: dict[str, NewEvent] = {}
        plans: list[_Plan | StoreError] = []
        head = self._head
        self._retracting_in_group = set()
        try:
            for batch in batches:
                try:
                    plan = self._plan(batch, now, head, versions, labs, keys_planned, stored or {})
                except StoreError as exc:
                    if optimistic:
                        raise _KeyTaken from exc
                    plans.append(exc)
                    continue
                self._retracting_in_group |= plan.retracting
                plans.append(plan)
                head += len(plan.rows)
                versions.update(plan.versions)
                labs.update(plan.labs)
                for event in plan.events:
                    keys_planned[event.key] = event
            rows = [row for p in plans if isinstance(p, _Plan) for row in p.rows]
            if rows:
                self._write(cur, rows, optimistic=optimistic)
                self._heads.wrote(versions, labs, head)
                self._head = head
                if self._head - self._projected >= CATCH_UP_AFTER_EVENTS:
                    self._catch_up_locked()
        finally:
            self._retracting_in_group = set()
        results = [self._result(p) for p in plans]
        # An event offered twice at once is reported with the event stored for it.
        stored_now = {
            r.idempotency_key: r
            for res in results
            if isinstance(res, AppendResult)
            for r in res.recorded
        }
        return [
            AppendResult(
                recorded=res.recorded,
                duplicates=(
                    *res.duplicates,
                    *(stored_now[k] for k in p.repeats if k in stored_now),
                ),
            )
            if isinstance(res, AppendResult) and isinstance(p, _Plan) and p.repeats
            else res
            for p, res in zip(plans, results, strict=True)
        ]

    # -- bulk import -------------------------------------------------------------------------
    def import_staged(self, staged: pa.Table) -> ImportResult:
        """Append a large batch (from rows.stage_events) in one transaction, checked in SQL.

        The same guarantees as append: all or nothing, gap-free seq, expected versions, deal
        references and retractions checked, and an event whose idempotency key is stored (or
        repeated in the batch) stored once. It raises ImportRefusedError, carrying the
        StoreError that append would raise for the first refused event and its row, and
        answers with counts instead of RecordedEvents. Unlike append, an import may retract an
        event that it adds earlier in the same batch: an exported log carries its corrections.
        """
        return self.import_chunks(lambda: staged.to_batches(max_chunksize=IMPORT_CHUNK_ROWS))

    def import_chunks(
        self, source: Callable[[], Iterable[pa.Table | pa.RecordBatch]]
    ) -> ImportResult:
        """Import the staged rows (rows.STAGED_SCHEMA) that source() yields, chunk by chunk, in
        one transaction: as import_staged, with one chunk in memory at a time.

        source() is called a second time, once, if the import has to start over: the first
        pass assumes that no idempotency key is stored or repeated (the unique index says when
        one is, at no cost otherwise; into an empty log, a query before the commit); the second
        looks the keys of every chunk up.
        """
        with self._write_lock:
            if self._closed:
                raise StoreError("the event store is closed")
            self._catch_up_locked()  # the import folds its own events, from a current state
            cur = self._con.cursor()
            now = self.clock.now()
            # Into an empty log, the unique indexes are built once from all the rows, after the
            # commit (the import checks both keys itself before it commits).
            rebuild = self._head == 0
            if rebuild:
                for name in EVENT_INDEXES:
                    cur.execute(f"DROP INDEX IF EXISTS {name}")
            settings = DuckDBSettings(self._con.cursor())
            try:
                try:
                    return self._import(
                        cur, source(), now, settings, careful=False, build_indexes=rebuild
                    )
                except _KeyTaken:
                    return self._import(
                        cur, source(), now, settings, careful=True, build_indexes=rebuild
                    )
            finally:
                settings.restore()
                if rebuild:
                    _build_indexes(cur)

    def _import(
        self,
        cur: duckdb.DuckDBPyConnection,
        chunks: Iterable[pa.Table | pa.RecordBatch],
        now: object,
        settings: DuckDBSettings,
        *,
        careful: bool,
        build_indexes: bool,
    ) -> ImportResult:
        head = self._head
        versions: dict[str, int] = {}  # stream versions as the import leaves them
        labs: dict[str, str] = {}
        placed: list[pa.ChunkedArray] = []  # the position of every row written, in seq order
        errors: list[tuple[int, int, StoreError]] = []  # (position, order of the check, error)
        written = duplicates = offset = 0
        if build_indexes:  # no index to hold: what DuckDB keeps of the rows written can go
            settings.set("memory_limit", IMPORT_MEMORY_LIMIT)
        cur.execute("BEGIN TRANSACTION")
        try:
            for given in _row_groups(chunks):
                chunk = _conform(given, offset)
                del given  # one chunk held at a time: the next is read once this one is gone
                offset += len(chunk)
                if careful:
                    chunk, skipped, error = self._drop_duplicates(cur, chunk)
                    duplicates += skipped
                    if error is not None:
                        errors.append((error[0], 0, error[1]))
                if len(chunk):
                    chunk = self._number(chunk, head + written, versions, labs)
                    errors.extend(_chunk_errors(chunk, now))
                    bulk_in = chunk  # noqa: F841  (read by name in BULK_INSERT)
                    cur.execute(BULK_INSERT, {"now": now})
                    del bulk_in
                    placed.append(chunk["pos"])
                    written += len(chunk)
                del chunk
                if errors:  # refused: what is written so far is checked below, then undone
                    break
            pa.default_memory_pool().release_unused()  # the chunks' memory, back to the system
            if written:
                row = cur.execute(
                    BULK_VIOLATION, {"head": head, "facts": sorted(DEAL_FACT_TYPES)}
                ).fetchone()
                if row is not None:
                    errors.append((_nth(placed, row[0] - head - 1), 3, _bulk_error(*row[1:])))
            if errors:
                if (
                    build_indexes
                    and not careful
                    and cur.execute(BULK_ANY_REPEAT, {"head": head}).fetchone()
                ):
                    raise _KeyTaken  # without its index, a repeated key can pass for a refusal
                position, _, error = min(errors, key=lambda e: (e[0], e[1]))
                raise ImportRefusedError(position, error)
            if build_indexes and written:  # no unique index yet to refuse a repeated key: ask
                self._check_unique(cur, head, careful=careful)
            if written:
                # One thread: a rebuild's fold then holds one set of hash tables, not one per
                # thread (+350 MB instead of +510 MB at 1M events, 3.2 GB instead of 5.1 GB at
                # 10M, in about the same time on 2 cores).
                settings.restore("memory_limit")  # the fold may need more (spilling is slow)
                settings.set("threads", "1")
                self._refresh_after_import(cur, head)
                settings.restore("threads")
            cur.execute("COMMIT")
        except duckdb.Error as exc:
            _rollback(cur)
            if not _is_unique_violation(exc):
                raise StoreError(f"the import failed, nothing was written: {exc}") from exc
            if not careful:
                raise _KeyTaken from exc
            self._load_caches()
            raise StoreError(
                "a concurrent write to the same streams was detected; nothing was written, retry"
            ) from exc
        except BaseException:
            _rollback(cur)
            raise
        self._head = head + written
        self._projected = self._head  # the import's transaction folded its events
        self._heads.wrote(versions, labs, self._head)
        return ImportResult(
            imported=written,
            duplicates=duplicates,
            first_seq=head + 1 if written else None,
            last_seq=head + written if written else None,
        )

    def _number(
        self,
        chunk: pa.Table,
        seq_before: int,
        versions: dict[str, int],
        labs: dict[str, str],
    ) -> pa.Table:
        """The chunk with seq, version and the lab of every deal event; versions and labs then
        hold what the chunk leaves.

        Each stream's events are numbered on from its version before the chunk, in pos order.
        A deal event's lab is its own, else the first one given earlier in the chunk to its
        deal (a DealReported), else the deal's lab before the chunk. In Arrow over the rows
        grouped by stream: the same as a window query (PARTITION BY stream_id ORDER BY pos)
        for a third of its time (it was ~20 % of a 1M-event import). The versions and labs
        reached stay in dicts: a lookup costs the same whatever their size (Arrow's index_in
        hashes its whole value set at every call).
        """
        n = len(chunk)
        order, run, starts, streams = _stream_runs(chunk["stream_id"])
        # one query for the chunk, not one a stream; none at all into an empty log
        stored = self._heads.heads_of(streams) if self._head else {}
        base = pa.array(
            [versions.get(s) or stored.get(s, _NO_HEAD)[0] for s in streams], pa.int64()
        )
        held = pa.array(
            [(d := deal_id_of(s)) and (labs.get(d) or stored.get(s, _NO_HEAD)[1]) for s in streams],
            pa.string(),
        )
        first = pc.indices_nonzero(starts).cast(pa.int64())  # where each stream's run starts
        version = pc.add(base.take(run), pc.subtract(_indices(n), first.take(run)))
        own = chunk["lab"].combine_chunks().take(order)
        lab = pc.coalesce(own, _first_so_far(own, run, starts), held.take(run))
        lab = pc.if_else(pc.is_valid(chunk["deal_id"].combine_chunks().take(order)), lab, None)
        back = pc.sort_indices(order)  # from stream order back to chunk order
        chunk = chunk.set_column(chunk.schema.get_field_index("lab"), "lab", lab.take(back))
        chunk = chunk.append_column("version", pc.add(version, 1).cast(pa.int32()).take(back))
        chunk = chunk.append_column("seq", _counting(seq_before + 1, n))
        ends = pa.concat_arrays([first.slice(1), pa.array([n], pa.int64())])
        last = pc.add(base, pc.subtract(ends, first))
        versions.update(zip(streams, last.to_pylist(), strict=True))
        reported = pc.equal(chunk["type"], "DealReported")
        deals, deal_labs = (pc.filter(chunk[c], reported).to_pylist() for c in ("deal_id", "lab"))
        labs.update(zip(deals, deal_labs, strict=True))
        return chunk

    def _drop_duplicates(
        self, cur: duckdb.DuckDBPyConnection, chunk: pa.Table
    ) -> tuple[pa.Table, int, tuple[int, StoreError] | None]:
        """The chunk without the events whose key is stored (or earlier in the import), how
        many those were, and the first one that reuses a key for another fact."""
        bulk_in = chunk  # noqa: F841  (scanned by name)
        stored = cur.execute(BULK_DUPLICATES).fetchall()
        repeated = cur.execute(BULK_REPEATED_KEYS).fetchall()
        del bulk_in
        errors: list[tuple[int, StoreError]] = []
        for pos, seq, same in stored:
            if not same:  # the text differs: compare as append does (upcast, reparse)
                row = cur.execute(SELECT_BY_SEQ, {"seq": seq}).fetchone()
                found = recorded_from_row(row)  # type: ignore[arg-type]
                event = _event_of_staged(chunk, pc.index(chunk["pos"], pos).as_py())
                try:
                    self._check_same_fact(event, found.stream_id, found.type, found.payload)
                except StoreError as exc:
                    errors.append((pos, exc))
                    break
        for pos, key, stream_id, type_name, same in repeated:
            if not same:
                errors.append((pos, _key_reuse_error(key, type_name, stream_id)))
                break
        skip = sorted({r[0] for r in stored} | {r[0] for r in repeated})
        keep = pc.invert(pc.is_in(chunk["pos"], pa.array(skip, pa.int64())))
        return chunk.filter(keep), len(skip), min(errors, key=lambda e: e[0], default=None)

    @staticmethod
    def _check_unique(cur: duckdb.DuckDBPyConnection, head: int, *, careful: bool) -> None:
        """Refuse to commit an import whose rows repeat a key the unique indexes will hold
        (built after the commit): a repeated idempotency key starts the careful pass over."""
        keys, versions = cur.execute(BULK_REPEATS, {"head": head}).fetchone()  # type: ignore[misc]
        if keys and not careful:
            raise _KeyTaken
        if keys or versions:  # the careful pass drops repeats, and numbering never repeats
            raise StoreError(
                "the import would store a key twice (a bug of the import); nothing was written"
            )

    def _refresh_after_import(self, cur: duckdb.DuckDBPyConnection, head: int) -> None:
        """Fold the imported events (seq > head) into the read models, in the import's
        transaction; they were current before it (import_chunks caught them up)."""
        if head == 0:  # into an empty log: the import is all there is, one fold of it
            rebuild_projections(cur)
            return
        limit = rebuild_threshold(cur) + 1
        touched = cur.execute(BULK_DEALS_COUNT, {"head": head, "limit": limit}).fetchone()[0]  # type: ignore[index]
        if touched >= limit:  # a large share of all deals: one rebuild is cheaper
            rebuild_projections(cur)
        else:
            refresh_projections(cur, after_seq=head)
            set_checkpoint_to_head(cur)

    def _ensure_indexes(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Build the unique indexes of the log that are missing (after an interrupted import)."""
        present = {r[0] for r in cur.execute(SELECT_EVENT_INDEXES).fetchall()}
        for name, sql in EVENT_INDEXES.items():
            if name not in present:
                log.warning("building the missing index %s of the event log", name)
                cur.execute(sql)

    def _stored_by_key(
        self, cur: duckdb.DuckDBPyConnection, keys: list[str]
    ) -> dict[str, RecordedEvent]:
        if not keys or self._head == 0:
            return {}
        if len(keys) == 1:
            rows = cur.execute(SELECT_BY_KEY, {"key": keys[0]}).fetchall()
        else:
            rows = cur.execute(SELECT_BY_KEYS, {"keys": keys}).fetchall()
        return {r[11]: recorded_from_row(r) for r in rows}

    def _plan(
        self,
        batch: Sequence[NewEvent],
        now: object,
        head: int,
        versions_so_far: dict[str, int],
        labs_so_far: dict[str, str],
        keys_planned: dict[str, NewEvent],
        stored: dict[str, RecordedEvent],
    ) -> _Plan:
        plan = _Plan()
        planned_here: dict[str, NewEvent] = {}
        for event in batch:
            if not isinstance(event, NewEvent):
                raise InvalidEventError(f"not an event: {type(event).__name__}")
            key = event.key
            if key in stored:
                found = stored[key]
                self._check_same_fact(event, found.stream_id, found.type, found.payload)
                plan.duplicates.append(stored[key])
                continue
            earlier = planned_here.get(key) or keys_planned.get(key)
            if earlier is not None:
                # Offered twice at once: stored once, and the caller is told like any repeat.
                self._check_same_fact(event, earlier.stream_id, earlier.type, earlier.payload)
                plan.repeats.append(key)
                continue
            planned_here[key] = event
            stream = event.stream_id
            current = plan.versions.get(stream)
            if current is None:
                current = versions_so_far.get(stream)
            if current is None:  # the store's head of the stream, looked up once an event
                current = self.stream_version(stream)
            if event.expected_version is not None and event.expected_version != current:
                raise ConcurrencyError(stream, event.expected_version, current)
            if event.occurred_at > now + FUTURE_TOLERANCE:  # type: ignore[operator]
                raise InvalidEventError(
                    f"occurred_at {event.occurred_at:%Y-%m-%d} is in the future; "
                    "record what has happened, not what is planned"
                )
            lab = self._check_references(event, current, plan, labs_so_far, versions_so_far)
            version = current + 1
            plan.versions[stream] = version
            plan.events.append(event)
            plan.rows.append(
                build_row(
                    event, seq=head + len(plan.rows) + 1, version=version, recorded_at=now, lab=lab
                )  # type: ignore[arg-type]
            )
        return plan

    def _check_same_fact(
        self, event: NewEvent, stream_id: str, type_name: str, payload: EventPayload
    ) -> None:
        same = (
            stream_id == event.stream_id
            and type_name == event.type
            and payload_json(payload) == payload_json(event.payload)
        )
        if not same:
            raise IdempotencyKeyReuseError(
                f"idempotency key {event.key!r} is already stored for a different event "
                f"({type_name} in {stream_id}); use a new key for a new fact"
            )

    def _check_references(
        self,
        event: NewEvent,
        current: int,
        plan: _Plan,
        labs_so_far: dict[str, str],
        versions_so_far: dict[str, int],
    ) -> str | None:
        """The lab of the event's deal, after checking that what the event names exists."""
        deal_id = deal_id_of(event.stream_id)
        payload = event.payload
        lab = None
        if deal_id is not None:
            lab = plan.labs.get(deal_id) or labs_so_far.get(deal_id) or self.lab_of(deal_id)
            if isinstance(payload, DealReported):
                if current > 0:
                    raise InvalidEventError(
                        f"deal {deal_id} is already reported; revise its terms or status instead"
                    )
                plan.labs[deal_id] = payload.lab
                lab = payload.lab
            elif current == 0:
                raise UnknownStreamError(
                    f"deal {deal_id} does not exist yet; its first event must be DealReported"
                )
            joining = (
                [payload.party]
                if isinstance(payload, CounterpartyJoined)
                else [c.party for c in payload.counterparties or ()]
                if isinstance(payload, DealTermsRevised)
                else []
            )
            if lab is not None and lab in joining:
                raise InvalidEventError(f"{lab} is the lab of {deal_id}, not its counterparty")
        if isinstance(payload, DealsLinked):
            other = f"deal:{payload.other_deal}"
            if payload.other_deal == deal_id:
                raise InvalidEventError("a deal cannot be linked to itself")
            if not (
                plan.versions.get(other) or versions_so_far.get(other) or self.stream_version(other)
            ):
                raise UnknownStreamError(f"deal {payload.other_deal} does not exist")
        if isinstance(payload, EventRetracted):
            self._check_retraction(event, payload, plan)
        return lab

    def _check_retraction(self, event: NewEvent, payload: EventRetracted, plan: _Plan) -> None:
        target = (
            self.cursor()
            .execute(SELECT_RETRACTION_TARGET, {"id": str(payload.event_id)})
            .fetchone()
        )
        if target is None:
            if any(e.event_id == payload.event_id for e in plan.events):
                raise InvalidEventError("an event cannot be retracted in the batch that adds it")
            raise UnknownStreamError(f"event {payload.event_id} does not exist")
        stream_id, type_name, retracted = target
        if stream_id != event.stream_id:
            raise InvalidEventError(
                f"event {payload.event_id} belongs to {stream_id}; "
                "append its retraction to that stream"
            )
        if type_name == "EventRetracted":
            raise InvalidEventError("a retraction cannot be retracted; record the fact again")
        if payload.event_id in plan.retracting or payload.event_id in self._retracting_in_group:
            raise InvalidEventError(f"event {payload.event_id} is already retracted in this append")
        plan.retracting.add(payload.event_id)
        if retracted:
            raise InvalidEventError(f"event {payload.event_id} is already retracted")

    def _write(
        self,
        cur: duckdb.DuckDBPyConnection,
        rows: list[dict[str, object]],
        *,
        optimistic: bool,
    ) -> None:
        """Insert the rows in one transaction; the read models catch up later (catch_up)."""
        cur.execute("BEGIN TRANSACTION")
        try:
            if len(rows) <= VALUES_INSERT_ROWS:
                cur.execute(*values_insert(rows))
            else:
                staged = rows_to_arrow(rows)  # noqa: F841  (scanned by name)
                cur.execute(INSERT_FROM_ARROW)
            cur.execute("COMMIT")
        except duckdb.ConstraintException as exc:
            _rollback(cur)
            if optimistic:  # most likely a stored idempotency key: plan again, knowing it
                raise _KeyTaken from exc
            # Only reachable if something other than this writer appended: reload what is true.
            self._load_caches()
            raise StoreError(
                "a concurrent write to the same streams was detected; nothing was written, retry"
            ) from exc
        except BaseException:
            _rollback(cur)
            raise

    def _result(self, plan: _Plan | StoreError) -> AppendResult | StoreError:
        if isinstance(plan, StoreError):
            return plan
        recorded = tuple(
            RecordedEvent.model_validate(
                {
                    **{k: row[k] for k in RECORDED_FIELDS},
                    "schema": row["schema"],
                    "payload": event.payload,
                    "idempotency_key": row["idempotency_key"],
                }
            )
            for row, event in zip(plan.rows, plan.events, strict=True)
        )
        return AppendResult(recorded=recorded, duplicates=tuple(plan.duplicates))


class _KeyTaken(Exception):
    """An optimistic write met a stored or repeated idempotency key (or may have): redo it with
    the keys looked up."""


def _build_indexes(cur: duckdb.DuckDBPyConnection) -> None:
    """Build the unique indexes of the log, dropped for an import into an empty log. After the
    commit a build writes them straight to the file; in the import's transaction it took ~250 MB
    more, to log them in the WAL. A process killed before this leaves them missing, and opening
    the store builds them (EventStore._ensure_indexes)."""
    try:
        for sql in EVENT_INDEXES.values():
            cur.execute(sql)
    except duckdb.Error as exc:
        raise StoreError(
            f"the unique indexes of the log could not be built ({exc}); opening the store "
            "again builds them"
        ) from exc


def _rollback(cur: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        cur.execute("ROLLBACK")


def _is_unique_violation(exc: duckdb.Error) -> bool:
    text = str(exc).lower()
    return "duplicate key" in text or "unique constraint" in text


def _key_reuse_error(key: str, type_name: str, stream_id: str) -> IdempotencyKeyReuseError:
    return IdempotencyKeyReuseError(
        f"idempotency key {key!r} is already stored for a different event "
        f"({type_name} in {stream_id}); use a new key for a new fact"
    )


@functools.cache
def _count_up(n: int) -> pa.Array:
    return pa.array(range(n), pa.int64())


def _indices(n: int) -> pa.Array:
    """0, 1, ..., n - 1 as int64 (a slice of a cached array: no Python loop per chunk)."""
    return _count_up(max(IMPORT_CHUNK_ROWS, 1 << max(n - 1, 0).bit_length())).slice(0, n)


def _counting(start: int, n: int) -> pa.Array:
    """start, start + 1, ..., start + n - 1 as int64."""
    return pc.add(_indices(n), pa.scalar(start, pa.int64()))


def _stream_runs(
    stream_ids: pa.ChunkedArray,
) -> tuple[pa.Array, pa.Array, pa.Array, list[str]]:
    """The order that groups a chunk's rows by stream, stably (so by pos within a stream); in
    that order, each row's run (its stream's place among the chunk's streams) and whether it
    starts one; and the streams, in run order."""
    # Dictionary codes, then a sort of integers: a third of the time of sorting the strings.
    encoded = pc.dictionary_encode(pc.fill_null(stream_ids, "").combine_chunks())
    order = pc.sort_indices(encoded.indices)  # a null stream is refused on insert
    run = encoded.indices.take(order).cast(pa.int64())
    n = len(run)
    changes = pc.not_equal(run.slice(1), run.slice(0, n - 1))
    starts = pa.concat_arrays([pa.array([True]), changes])
    return order, run, starts, encoded.dictionary.to_pylist()


def _first_so_far(values: pa.Array, run: pa.Array, starts: pa.Array) -> pa.Array:
    """For each row in run order, the first non-null value of its run up to and including it
    (first_value(values IGNORE NULLS) over the run so far); null before the run has one."""
    n = len(values)
    given = pc.is_valid(values)
    seen = pc.cumulative_sum(given.cast(pa.int64()))  # non-null values so far, all runs
    before_run = pc.subtract(seen, given.cast(pa.int64())).filter(starts)
    is_first = pc.and_(given, pc.equal(pc.subtract(seen, before_run.take(run)), 1))
    none_yet = pc.if_else(starts, -1, pa.scalar(None, pa.int64()))
    at = pc.fill_null_forward(pc.if_else(is_first, _indices(n), none_yet))
    first = values.take(pc.max_element_wise(at, 0))
    return pc.if_else(pc.greater_equal(at, 0), first, pa.scalar(None, values.type))


def _row_groups(chunks: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[pa.Table]:
    """The rows of the chunks again, in chunks of ROW_GROUP_ROWS (the last one shorter), each
    column in one piece: an INSERT of whole row groups lets DuckDB write them to the file before
    the commit, instead of holding the import in memory. (From a table in several pieces DuckDB
    inserts in parallel and writes smaller row groups, which the next checkpoint rewrites: at
    1M events in chunks of 20,000, +2.9 s and +430 MB.) No chunk is held here while the next
    one is read."""
    held: list[pa.Table] = []
    size = 0
    for chunk in chunks:
        held.append(pa.Table.from_batches([chunk]) if isinstance(chunk, pa.RecordBatch) else chunk)
        size += len(held[-1])
        del chunk
        while size >= ROW_GROUP_ROWS:
            whole = pa.concat_tables(held) if len(held) > 1 else held[0]
            group, rest = whole.slice(0, ROW_GROUP_ROWS), whole.slice(ROW_GROUP_ROWS)
            del whole
            held, size = ([rest] if len(rest) else []), len(rest)
            del rest
            yield _in_one_piece(group)
            del group
    if size:
        yield _in_one_piece(pa.concat_tables(held) if len(held) > 1 else held[0])


def _in_one_piece(table: pa.Table) -> pa.Table:
    return table.combine_chunks() if any(c.num_chunks > 1 for c in table.columns) else table


def _conform(chunk: pa.Table | pa.RecordBatch, offset: int) -> pa.Table:
    """A chunk as STAGED_SCHEMA, with `pos`: each row's place among all rows of the import."""
    if isinstance(chunk, pa.RecordBatch):
        chunk = pa.Table.from_batches([chunk])
    if not chunk.schema.equals(STAGED_SCHEMA):
        chunk = chunk.select(STAGED_SCHEMA.names).cast(STAGED_SCHEMA)
    return chunk.append_column("pos", _counting(offset, len(chunk)))


def _chunk_errors(chunk: pa.Table, now: object) -> list[tuple[int, int, StoreError]]:
    """The first event of a numbered chunk whose expected version does not hold, and the first
    dated in the future (the checks of _plan that need no other rows)."""
    errors: list[tuple[int, int, StoreError]] = []
    expected = chunk["expected_version"]
    if expected.null_count < len(chunk):
        actual = pc.subtract(chunk["version"], 1)
        wrong = pc.fill_null(pc.not_equal(expected, actual), False)
        if pc.any(wrong).as_py():
            i = pc.index(wrong, True).as_py()
            error = ConcurrencyError(
                chunk["stream_id"][i].as_py(), expected[i].as_py(), actual[i].as_py()
            )
            errors.append((chunk["pos"][i].as_py(), 1, error))
    limit = pa.scalar(
        now + FUTURE_TOLERANCE,  # type: ignore[operator]
        chunk.schema.field("occurred_at").type,
    )
    too_late = pc.greater(chunk["occurred_at"], limit)
    if pc.any(too_late).as_py():
        i = pc.index(too_late, True).as_py()
        error = InvalidEventError(
            f"occurred_at {chunk['occurred_at'][i].as_py():%Y-%m-%d} is in the future; "
            "record what has happened, not what is planned"
        )
        errors.append((chunk["pos"][i].as_py(), 2, error))
    return errors


def _nth(placed: list[pa.ChunkedArray], index: int) -> int:
    """The index-th value across the arrays (the position of the index-th row written)."""
    for array in placed:
        if index < len(array):
            return int(array[index].as_py())
        index -= len(array)
    raise IndexError(index)


def _event_of_staged(staged: pa.Table, index: int) -> NewEvent:
    row = staged.slice(index, 1).to_pylist()[0]
    return NewEvent(
        stream_id=row["stream_id"],
        payload=parse_payload(row["type"], row["schema"], row["payload"]),
        occurred_at=row["occurred_at"],
        actor=row["actor"],
        source_url=row["source_url"],
        source_title=row["source_title"],
        event_id=row["event_id"],
        idempotency_key=row["idempotency_key"],
    )


def _bulk_error(code: int, stream_id: str, detail: str | None, version: int) -> StoreError:
    """The error _plan raises for a BULK_VIOLATION code, with the same message."""
    deal_id = deal_id_of(stream_id)
    if code == 1:
        return InvalidEventError(
            f"deal {deal_id} is already reported; revise its terms or status instead"
        )
    if code == 2:
        return UnknownStreamError(
            f"deal {deal_id} does not exist yet; its first event must be DealReported"
        )
    if code == 3:
        return InvalidEventError("a deal cannot be linked to itself")
    if code == 4:
        return UnknownStreamError(f"deal {detail} does not exist")
    if code == 5:
        return InvalidEventError(f"{detail} is the lab of {deal_id}, not its counterparty")
    target, _, target_stream = (detail or "").partition("|")
    if code == 6:
        return UnknownStreamError(f"event {target} does not exist")
    if code == 7:
        return InvalidEventError(
            f"event {target} belongs to {target_stream}; append its retraction to that stream"
        )
    if code == 8:
        return InvalidEventError("a retraction cannot be retracted; record the fact again")
    return InvalidEventError(f"event {target} is already retracted")
