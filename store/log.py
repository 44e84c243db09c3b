"""The event log: atomic batch appends with optimistic concurrency and idempotency, and reads."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
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
from store.projections import rebuild_projections, refresh_projections
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
)

log = logging.getLogger(__name__)

SELECT_STREAM_VERSIONS = "SELECT stream_id, max(version) FROM events GROUP BY stream_id"
SELECT_DEAL_LABS = (
    "SELECT deal_id, any_value(lab) FROM events WHERE type = 'DealReported' GROUP BY 1"
)
SELECT_STREAM_VERSIONS_AFTER = (
    "SELECT stream_id, max(version) FROM events WHERE seq > $after GROUP BY stream_id"
)
SELECT_DEAL_LABS_AFTER = (
    "SELECT deal_id, any_value(lab) FROM events "
    "WHERE seq > $after AND type = 'DealReported' GROUP BY 1"
)
SELECT_HEAD = "SELECT coalesce(max(seq), 0) FROM events"
SELECT_BY_KEYS = ENVELOPE_SELECT + " WHERE idempotency_key IN (SELECT unnest($keys)) ORDER BY seq"
SELECT_STREAM = ENVELOPE_SELECT + " WHERE stream_id = $stream AND version >= $from ORDER BY version"
SELECT_AFTER = ENVELOPE_SELECT + " WHERE seq > $after ORDER BY seq LIMIT $limit"
SELECT_EVENT = ENVELOPE_SELECT + " WHERE event_id = $id"
SELECT_RETRACTED = "SELECT 1 FROM events WHERE type = 'EventRetracted' AND target_event_id = $id"
SELECT_COUNT = "SELECT count(*) FROM events"

# -- bulk import (EventStore.import_staged): the checks of _plan, done in SQL over the batch ---
# The current version and the lab of every stream the batch touches.
BULK_STREAMS = """
CREATE OR REPLACE TEMP TABLE bulk_streams AS
SELECT s.stream_id, coalesce(max(e.version), 0) AS base,
       any_value(e.lab) FILTER (WHERE e.type = 'DealReported') AS lab
FROM (SELECT DISTINCT stream_id FROM bulk_in) s LEFT JOIN events e USING (stream_id)
GROUP BY s.stream_id
"""
# Version and lab of each event, in batch order (narrow, so that the wide rows are not sorted).
BULK_VERSIONS = """
CREATE OR REPLACE TEMP TABLE bulk_versions AS
SELECT b.pos,
       (s.base + row_number() OVER w)::INTEGER AS version,
       CASE WHEN b.deal_id IS NOT NULL
            THEN coalesce(b.lab, first_value(b.lab IGNORE NULLS) OVER w, s.lab) END AS lab
FROM bulk_in b JOIN bulk_streams s USING (stream_id)
WINDOW w AS (PARTITION BY b.stream_id ORDER BY b.pos)
ORDER BY b.pos
"""
BULK_INSERT = (
    "INSERT INTO events SELECT "
    + ", ".join(
        "$head + 1 + b.pos"
        if c == "seq"
        else "v.version"
        if c == "version"
        else "$now::TIMESTAMPTZ"
        if c == "recorded_at"
        else "v.lab"
        if c == "lab"
        else f"b.{c}::UUID"
        if c in ("event_id", "target_event_id")
        else f"b.{c}::JSON"
        if c == "payload"
        else f"b.{c}"
        for c in COLUMNS
    )
    + " FROM bulk_in b POSITIONAL JOIN bulk_versions v"
)
# Stored events whose idempotency key a batch offers again.
BULK_DUPLICATES = """
SELECT b.pos, e.seq,
       e.stream_id = b.stream_id AND e.type = b.type AND e.payload::VARCHAR = b.payload AS same
FROM bulk_in b JOIN events e ON e.idempotency_key = b.idempotency_key
ORDER BY b.pos
"""
BULK_REPEATED_KEYS = """
SELECT pos FROM bulk_in
QUALIFY row_number() OVER (PARTITION BY idempotency_key ORDER BY pos) > 1
"""
# The first event of the batch (seq > $head) that the per-event checks of _plan would refuse,
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
                      WHERE x.type = 'EventRetracted' AND x.seq <= $head
                        AND x.target_event_id = r.target_event_id))
)
ORDER BY seq, code
LIMIT 1
"""
BULK_EXPECTED = """
SELECT b.pos, b.stream_id, b.expected_version, v.version - 1
FROM bulk_in b POSITIONAL JOIN bulk_versions v
WHERE b.expected_version IS NOT NULL AND b.expected_version <> v.version - 1
ORDER BY b.pos
LIMIT 1
"""
BULK_DEALS = "SELECT DISTINCT deal_id FROM bulk_in WHERE deal_id IS NOT NULL"
# Above this many touched deals a bulk import refolds every deal instead of the touched ones.
BULK_REBUILD_DEALS = 2_000

# An event may be dated a little ahead of the store's clock (a date typed in a timezone ahead of
# UTC), but not further: the log holds what happened, not what is planned.
FUTURE_TOLERANCE = timedelta(days=1)
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
    many it already had under the same idempotency key (stored once, not again)."""

    imported: int = 0
    duplicates: int = 0
    first_seq: int | None = None
    last_seq: int | None = None


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
        self._write_lock = threading.Lock()
        self._retracting_in_group: set[UUID] = set()
        self._closed = False
        migrate(self._con)
        self._load_caches()

    # -- lifecycle ---------------------------------------------------------------------------
    def _load_caches(self) -> None:
        # The writer is the only one that appends, so these caches are authoritative; the
        # unique key on (stream_id, version) still guards against a mistake here.
        cur = self._con.cursor()
        self._versions: dict[str, int] = dict(cur.execute(SELECT_STREAM_VERSIONS).fetchall())
        self._labs: dict[str, str] = dict(cur.execute(SELECT_DEAL_LABS).fetchall())
        self._head: int = cur.execute(SELECT_HEAD).fetchone()[0]  # type: ignore[index]

    def close(self) -> None:
        with self._write_lock:
            if not self._closed:
                self._closed = True
                self._con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the store's connection for one thread's reads (store-internal modules)."""
        if self._closed:
            raise StoreError("the event store is closed")
        return self._con.cursor()

    # -- reads -------------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The seq of the last event appended (0 for an empty log)."""
        return self._head

    def stream_version(self, stream_id: str) -> int:
        return self._versions.get(stream_id, 0)

    def deal_ids(self) -> list[str]:
        return sorted(self._labs)

    def lab_of(self, deal_id: str) -> str | None:
        return self._labs.get(deal_id)

    def count(self) -> int:
        return self.cursor().execute(SELECT_COUNT).fetchone()[0]  # type: ignore[index,no-any-return]

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        rows = self.cursor().execute(SELECT_STREAM, {"stream": stream_id, "from": from_version})
        return [recorded_from_row(r) for r in rows.fetchall()]

    def read_all(self, after: int = 0, limit: int | None = None) -> Iterator[RecordedEvent]:
        """Events in seq order after position `after`, read page by page."""
        cur = self.cursor()
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
        row = self.cursor().execute(SELECT_EVENT, {"id": str(event_id)}).fetchone()
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
        """
        with self._write_lock:
            if self._closed:
                raise StoreError("the event store is closed")
            cur = self._con.cursor()
            now = self.clock.now()
            versions: dict[str, int] = {}  # stream versions as the planned batches leave them
            labs: dict[str, str] = {}
            keys_planned: dict[str, NewEvent] = {}
            stored = self._stored_by_key(cur, [e.key for batch in batches for e in batch])
            plans: list[_Plan | StoreError] = []
            head = self._head
            self._retracting_in_group = set()
            for batch in batches:
                try:
                    plan = self._plan(batch, now, head, versions, labs, keys_planned, stored)
                except StoreError as exc:
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
                self._write(cur, rows, {str(r["deal_id"]) for r in rows if r["deal_id"]})
                self._versions.update(versions)
                self._labs.update(labs)
                self._head = head
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

    def import_staged(self, staged: pa.Table) -> ImportResult:
        """Append a large batch (from rows.stage_events) in one transaction, checked in SQL.

        The same guarantees as append: all or nothing, gap-free seq, expected versions, deal
        references and retractions checked, and an event whose idempotency key is stored (or
        repeated in the batch) stored once. It raises the StoreError that append would raise
        for the first refused event, and answers with counts instead of RecordedEvents.
        Unlike append, an import may retract an event that it adds earlier in the same batch:
        an exported log carries its corrections.
        """
        if staged.schema != STAGED_SCHEMA:
            staged = staged.select(STAGED_SCHEMA.names).cast(STAGED_SCHEMA)
        with self._write_lock:
            if self._closed:
                raise StoreError("the event store is closed")
            if len(staged) == 0:
                return ImportResult()
            cur = self._con.cursor()
            now = self.clock.now()
            staged = staged.append_column("pos", pa.array(range(len(staged)), pa.int64()))
            try:
                # The unique keys find repeated idempotency keys for free: only when the insert
                # trips over one is the batch split into new events and duplicates.
                return self._import(cur, staged, staged, now, 0, first_try=True)
            except _RepeatedKeyError:
                pass
            fresh, duplicates, error = self._split_duplicates(cur, staged)
            if len(fresh) == 0:
                if error is not None:
                    raise error[1]
                return ImportResult(duplicates=duplicates)
            return self._import(cur, staged, fresh, now, duplicates, error)

    def _split_duplicates(
        self, cur: duckdb.DuckDBPyConnection, staged: pa.Table
    ) -> tuple[pa.Table, int, tuple[int, StoreError] | None]:
        cur.register("bulk_in", staged)
        try:
            stored = cur.execute(BULK_DUPLICATES).fetchall() if self._head else []
            repeated = {r[0] for r in cur.execute(BULK_REPEATED_KEYS).fetchall()}
        finally:
            cur.unregister("bulk_in")
        error: tuple[int, StoreError] | None = None
        for pos, seq, same in stored:
            if not same:  # the text differs: compare as _check_same_fact does (upcast, reparse)
                event = _event_of_staged(staged, pos)
                stored_event = next(self.read_all(after=seq - 1, limit=1))
                try:
                    self._check_same_fact(event, stored_event)
                except StoreError as exc:
                    error = (pos, exc)
                    break
        skip = {r[0] for r in stored} | repeated
        keep = pc.invert(pc.is_in(staged["pos"], pa.array(sorted(skip), pa.int64())))
        return staged.filter(keep), len(stored), error

    def _import(
        self,
        cur: duckdb.DuckDBPyConnection,
        staged: pa.Table,
        fresh: pa.Table,
        now: object,
        duplicates: int,
        earlier_error: tuple[int, StoreError] | None = None,
        *,
        first_try: bool = False,
    ) -> ImportResult:
        head = self._head
        errors: list[tuple[int, int, StoreError]] = []
        if earlier_error is not None:
            errors.append((earlier_error[0], 0, earlier_error[1]))
        # seq follows the row order of the fresh rows; pos is the row's place in the batch.
        bulk_in = fresh.drop_columns(["pos"]).append_column(
            "pos", pa.array(range(len(fresh)), pa.int64())
        )
        too_late = pc.greater(
            fresh["occurred_at"],
            pa.scalar(
                now + FUTURE_TOLERANCE,  # type: ignore[operator]
                fresh.schema.field("occurred_at").type,
            ),
        )
        if pc.any(too_late).as_py():
            i = pc.index(too_late, True).as_py()
            errors.append(
                (
                    fresh["pos"][i].as_py(),
                    2,
                    InvalidEventError(
                        f"occurred_at {fresh['occurred_at'][i].as_py():%Y-%m-%d} is in the future; "
                        "record what has happened, not what is planned"
                    ),
                )
            )
        cur.register("bulk_in", bulk_in)
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.execute(BULK_STREAMS)
            cur.execute(BULK_VERSIONS)
            if bulk_in["expected_version"].null_count < len(bulk_in):
                row = cur.execute(BULK_EXPECTED).fetchone()
                if row is not None:
                    i, stream, expected, actual = row
                    errors.append(
                        (fresh["pos"][i].as_py(), 1, ConcurrencyError(stream, expected, actual))
                    )
            try:
                cur.execute(BULK_INSERT, {"head": head, "now": now})
            except duckdb.ConstraintException as exc:
                cur.execute("ROLLBACK")
                if first_try and "idempotency_key" in str(exc):
                    raise _RepeatedKeyError from exc
                self._load_caches()
                raise StoreError(
                    "a concurrent write to the same streams was detected; nothing was written, "
                    "retry"
                ) from exc
            row = cur.execute(
                BULK_VIOLATION, {"head": head, "facts": sorted(DEAL_FACT_TYPES)}
            ).fetchone()
            if row is not None:
                errors.append((fresh["pos"][row[0] - head - 1].as_py(), 3, _bulk_error(*row[1:])))
            if errors:
                cur.execute("ROLLBACK")
                raise min(errors, key=lambda e: (e[0], e[1]))[2]
            deals = [r[0] for r in cur.execute(BULK_DEALS).fetchall()]
            if len(deals) > BULK_REBUILD_DEALS:
                rebuild_projections(cur)
            elif deals:
                refresh_projections(cur, sorted(deals), after_seq=head)
            cur.execute("DROP TABLE bulk_streams")
            cur.execute("DROP TABLE bulk_versions")
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.execute("ROLLBACK")
            raise
        finally:
            cur.unregister("bulk_in")
        n = len(fresh)
        self._head = head + n
        self._load_stream_caches(cur, head)
        return ImportResult(
            imported=n, duplicates=duplicates, first_seq=head + 1, last_seq=head + n
        )

    def _load_stream_caches(self, cur: duckdb.DuckDBPyConnection, after: int) -> None:
        """Bring the writer's caches up to date with the events after seq `after`."""
        self._versions.update(
            cur.execute(SELECT_STREAM_VERSIONS_AFTER, {"after": after}).fetchall()
        )
        self._labs.update(cur.execute(SELECT_DEAL_LABS_AFTER, {"after": after}).fetchall())

    def _stored_by_key(
        self, cur: duckdb.DuckDBPyConnection, keys: list[str]
    ) -> dict[str, RecordedEvent]:
        if not keys or self._head == 0:
            return {}
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
            current = plan.versions.get(
                stream, versions_so_far.get(stream, self._versions.get(stream, 0))
            )
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
            lab = plan.labs.get(deal_id) or labs_so_far.get(deal_id) or self._labs.get(deal_id)
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
                plan.versions.get(other) or versions_so_far.get(other) or self._versions.get(other)
            ):
                raise UnknownStreamError(f"deal {payload.other_deal} does not exist")
        if isinstance(payload, EventRetracted):
            self._check_retraction(event, payload, plan)
        return lab

    def _check_retraction(self, event: NewEvent, payload: EventRetracted, plan: _Plan) -> None:
        target = self.get_event(payload.event_id)
        if target is None:
            if any(e.event_id == payload.event_id for e in plan.events):
                raise InvalidEventError("an event cannot be retracted in the batch that adds it")
            raise UnknownStreamError(f"event {payload.event_id} does not exist")
        if target.stream_id != event.stream_id:
            raise InvalidEventError(
                f"event {payload.event_id} belongs to {target.stream_id}; "
                "append its retraction to that stream"
            )
        if target.type == "EventRetracted":
            raise InvalidEventError("a retraction cannot be retracted; record the fact again")
        if payload.event_id in plan.retracting or payload.event_id in self._retracting_in_group:
            raise InvalidEventError(f"event {payload.event_id} is already retracted in this append")
        plan.retracting.add(payload.event_id)
        if self.cursor().execute(SELECT_RETRACTED, {"id": str(payload.event_id)}).fetchone():
            raise InvalidEventError(f"event {payload.event_id} is already retracted")

    def _write(
        self, cur: duckdb.DuckDBPyConnection, rows: list[dict[str, object]], deal_ids: set[str]
    ) -> None:
        staged = rows_to_arrow(rows)  # noqa: F841  (read by name in INSERT_FROM_ARROW)
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.register("staged", staged)
            cur.execute(INSERT_FROM_ARROW)
            cur.unregister("staged")
            if deal_ids:
                after_seq = min(int(r["seq"]) for r in rows) - 1  # type: ignore[call-overload]
                refresh_projections(cur, sorted(deal_ids), after_seq=after_seq)
            cur.execute("COMMIT")
        except duckdb.ConstraintException as exc:
            # Only reachable if something other than this writer appended: reload what is true.
            cur.execute("ROLLBACK")
            self._load_caches()
            raise StoreError(
                "a concurrent write to the same streams was detected; nothing was written, retry"
            ) from exc
        except BaseException:
            cur.execute("ROLLBACK")
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


class _RepeatedKeyError(Exception):
    """Raised inside import_staged when the batch repeats an idempotency key (or one stored)."""


def _event_of_staged(staged: pa.Table, pos: int) -> NewEvent:
    row = staged.slice(pos, 1).to_pylist()[0]
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
