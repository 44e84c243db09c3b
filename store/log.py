"""The event log: atomic batch appends with optimistic concurrency and idempotency, and reads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import duckdb

from events.envelope import NewEvent, RecordedEvent
from events.payloads import DEAL_FACT_TYPES, DealReported, DealsLinked, EventRetracted
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
from store.projections import refresh_deal_state
from store.rows import (
    ENVELOPE_SELECT,
    INSERT_FROM_ARROW,
    build_row,
    deal_id_of,
    payload_json,
    recorded_from_row,
    rows_to_arrow,
)

log = logging.getLogger(__name__)

SELECT_STREAM_VERSIONS = "SELECT stream_id, max(version) FROM events GROUP BY stream_id"
SELECT_DEAL_LABS = "SELECT deal_id, any_value(lab) FROM events WHERE type = 'DealReported' GROUP BY 1"
SELECT_HEAD = "SELECT coalesce(max(seq), 0) FROM events"
SELECT_BY_KEYS = ENVELOPE_SELECT + " WHERE idempotency_key IN (SELECT unnest($keys)) ORDER BY seq"
SELECT_STREAM = ENVELOPE_SELECT + " WHERE stream_id = $stream AND version >= $from ORDER BY version"
SELECT_AFTER = ENVELOPE_SELECT + " WHERE seq > $after ORDER BY seq LIMIT $limit"
SELECT_EVENT = ENVELOPE_SELECT + " WHERE event_id = $id"
SELECT_RETRACTED = "SELECT 1 FROM events WHERE type = 'EventRetracted' AND target_event_id = $id"
SELECT_COUNT = "SELECT count(*) FROM events"

# An event may be dated a little ahead of the store's clock (a date typed in a timezone ahead of
# UTC), but not further: the log holds what happened, not what is planned.
FUTURE_TOLERANCE = timedelta(days=1)
READ_PAGE = 10_000
RECORDED_FIELDS = ("seq", "event_id", "stream_id", "version", "type", "occurred_at", "recorded_at",
                   "actor", "source_url", "source_title")


@dataclass(frozen=True)
class AppendResult:
    """What an append did: the events it stored, and the ones it already had (same key)."""

    recorded: tuple[RecordedEvent, ...] = ()
    duplicates: tuple[RecordedEvent, ...] = ()

    @property
    def all_duplicates(self) -> bool:
        return not self.recorded and bool(self.duplicates)


@dataclass
class _Plan:
    """The rows one batch will write, worked out before anything is written."""

    rows: list[dict[str, object]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    duplicates: list[RecordedEvent] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)
    labs: dict[str, str] = field(default_factory=dict)


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

    def append_many(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> list[AppendResult | StoreError]:
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
            for batch in batches:
                try:
                    plan = self._plan(batch, now, head, versions, labs, keys_planned, stored)
                except StoreError as exc:
                    plans.append(exc)
                    continue
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
            return [self._result(p) for p in plans]

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
        seen_in_batch: set[str] = set()
        for event in batch:
            if not isinstance(event, NewEvent):
                raise InvalidEventError(f"not an event: {type(event).__name__}")
            key = event.key
            if key in stored:
                self._check_same_fact(event, stored[key])
                plan.duplicates.append(stored[key])
                continue
            if key in seen_in_batch or key in keys_planned:
                continue  # offered twice at once: stored once
            seen_in_batch.add(key)
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
                build_row(event, seq=head + len(plan.rows) + 1, version=version,
                          recorded_at=now, lab=lab)  # type: ignore[arg-type]
            )
        return plan

    def _check_same_fact(self, event: NewEvent, stored: RecordedEvent) -> None:
        same = (
            stored.stream_id == event.stream_id
            and stored.type == event.type
            and payload_json(stored.payload) == payload_json(event.payload)
        )
        if not same:
            raise IdempotencyKeyReuseError(
                f"idempotency key {event.key!r} is already stored for a different event "
                f"({stored.type} in {stored.stream_id}); use a new key for a new fact"
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
            elif event.type in DEAL_FACT_TYPES and current == 0:
                raise UnknownStreamError(
                    f"deal {deal_id} does not exist yet; its first event must be DealReported"
                )
        if isinstance(payload, DealsLinked):
            other = f"deal:{payload.other_deal}"
            if payload.other_deal == deal_id:
                raise InvalidEventError("a deal cannot be linked to itself")
            if not (plan.versions.get(other) or versions_so_far.get(other)
                    or self._versions.get(other)):
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
                refresh_deal_state(cur, sorted(deal_ids))
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
                {**{k: row[k] for k in RECORDED_FIELDS}, "schema": row["schema"],
                 "payload": event.payload, "idempotency_key": row["idempotency_key"]}
            )
            for row, event in zip(plan.rows, plan.events, strict=True)
        )
        return AppendResult(recorded=recorded, duplicates=tuple(plan.duplicates))
