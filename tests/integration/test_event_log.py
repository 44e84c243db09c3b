"""The event log on a real DuckDB file: appends, atomic batches, concurrency, idempotency, reads,
migrations, and the append-only rule."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from events.payloads import DealReported, EventRetracted
from store.clock import ManualClock
from store.errors import (
    ConcurrencyError,
    IdempotencyKeyReuseError,
    InvalidEventError,
    MigrationError,
    StoreError,
    UnknownStreamError,
)
from store.log import READ_PAGE, EventStore
from store.migrations import bundled_migrations, migrate
from tests.factories import (
    FEB_01,
    JAN_11,
    MAR_01,
    make_candidate_accepted,
    make_capacity_online,
    make_counterparty_joined,
    make_deal_reported,
    make_deals_linked,
    make_digest_posted,
    make_retraction,
    make_status_change,
    make_terms_revision,
    one_event_of_every_type,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_an_appended_event_reads_back_as_recorded(store: EventStore) -> None:
    event = make_deal_reported("acme-cloud-1", lab="anthropic", capacity_mw=1_200)

    result = store.append([event])

    [recorded] = store.read_stream("deal:acme-cloud-1")
    assert result.recorded == (recorded,)
    assert (recorded.seq, recorded.version, recorded.type) == (1, 1, "DealReported")
    assert recorded.event_id == event.event_id
    assert recorded.payload == event.payload
    assert recorded.occurred_at == event.occurred_at
    assert recorded.source_url == event.source_url
    assert recorded.idempotency_key == event.key


def test_every_event_type_reads_back_with_its_payload(store: EventStore) -> None:
    *events, retraction = one_event_of_every_type()
    store.append(events)

    store.append([retraction])

    read = list(store.read_all())
    assert [e.type for e in read] == [e.type for e in [*events, retraction]]
    assert [e.payload for e in read] == [e.payload for e in [*events, retraction]]


def test_a_reopened_store_reads_what_was_appended(db_path: Path, clock: ManualClock) -> None:
    with EventStore(db_path, clock=clock) as first:
        first.append([make_deal_reported("acme-cloud-1"), make_status_change("acme-cloud-1")])

    with EventStore(db_path, clock=clock) as reopened:
        state = (reopened.head, reopened.stream_version("deal:acme-cloud-1"), reopened.deal_ids())

    assert state == (2, 2, ["acme-cloud-1"])


def test_versions_count_up_within_each_stream(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1"), make_deal_reported("acme-cloud-2")])

    store.append([make_status_change("acme-cloud-2"), make_capacity_online("acme-cloud-2")])

    assert [e.version for e in store.read_stream("deal:acme-cloud-2")] == [1, 2, 3]
    assert store.stream_version("deal:acme-cloud-1") == 1


def test_every_deal_event_carries_its_lab(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", lab="meta"), make_status_change()])

    labs = store.cursor().execute("SELECT DISTINCT lab FROM events").fetchall()

    assert labs == [("meta",)]
    assert store.lab_of("acme-cloud-1") == "meta"


def test_recorded_at_comes_from_the_stores_clock(store: EventStore, clock: ManualClock) -> None:
    clock.set(datetime(2026, 2, 14, 9, 30, tzinfo=UTC))
    store.append([make_deal_reported("acme-cloud-1")])
    clock.advance(timedelta(hours=2))

    store.append([make_status_change("acme-cloud-1")])

    assert [e.recorded_at for e in store.read_all()] == [
        datetime(2026, 2, 14, 9, 30, tzinfo=UTC),
        datetime(2026, 2, 14, 11, 30, tzinfo=UTC),
    ]


def test_a_batch_shares_one_recorded_at(store: EventStore, clock: ManualClock) -> None:
    result = store.append([make_deal_reported("acme-cloud-1"), make_status_change()])

    assert {e.recorded_at for e in result.recorded} == {clock.now()}


def test_reads_on_a_store_cursor_use_utc_whatever_the_host_timezone(tmp_path: Path) -> None:
    script = (
        "from store.log import EventStore\n"
        "from tests.factories import JAN_11, make_deal_reported, manual_clock\n"
        f"store = EventStore({str(tmp_path / 'tz.duckdb')!r}, clock=manual_clock())\n"
        "store.append([make_deal_reported(occurred_at=JAN_11)])\n"
        "sql = \"SELECT count(*) FROM deal_states(as_of := '2026-01-11 00:00:00')\"\n"
        "print(store.cursor().execute(sql).fetchone()[0])\n"
    )

    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"TZ": "Asia/Tokyo", "PYTHONPATH": str(REPO_ROOT)},
    )

    assert run.stdout.strip() == "1"  # the deal occurred at 2026-01-11 00:00 UTC, not Tokyo time


# -- atomic batches ----------------------------------------------------------------------------


def test_a_batch_with_a_version_conflict_writes_nothing(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1")])
    batch = [
        make_deal_reported("acme-cloud-2"),
        make_status_change("acme-cloud-1", expected_version=0),
    ]

    with pytest.raises(
        ConcurrencyError,
        match="deal:acme-cloud-1 changed meanwhile: expected version 0, it is at 1",
    ):
        store.append(batch)

    assert (store.count(), store.head, store.deal_ids()) == (1, 1, ["acme-cloud-1"])


def test_a_batch_with_an_event_for_an_unknown_deal_writes_nothing(store: EventStore) -> None:
    batch = [make_deal_reported("acme-cloud-1"), make_status_change("acme-cloud-9")]

    with pytest.raises(
        UnknownStreamError,
        match="deal acme-cloud-9 does not exist yet; its first event must be DealReported",
    ):
        store.append(batch)

    assert (store.count(), store.head, store.stream_version("deal:acme-cloud-1")) == (0, 0, 0)


def test_a_batch_with_an_event_in_the_future_writes_nothing(
    store: EventStore, clock: ManualClock
) -> None:
    batch = [
        make_deal_reported("acme-cloud-1"),
        make_status_change("acme-cloud-1", occurred_at=clock.now() + timedelta(days=3)),
    ]

    with pytest.raises(InvalidEventError, match="occurred_at 2026-03-04 is in the future"):
        store.append(batch)

    assert store.count() == 0


def test_an_event_dated_a_few_hours_ahead_of_the_clock_is_accepted(
    store: EventStore, clock: ManualClock
) -> None:
    event = make_deal_reported(occurred_at=clock.now() + timedelta(hours=10))

    result = store.append([event])

    assert len(result.recorded) == 1


def test_a_batch_with_a_retraction_of_an_unknown_event_writes_nothing(store: EventStore) -> None:
    ghost = make_deal_reported("acme-cloud-1")
    stored = make_deal_reported("acme-cloud-1")
    store.append([stored])
    batch = [make_status_change("acme-cloud-1"), make_retraction(ghost)]

    with pytest.raises(UnknownStreamError, match=f"event {ghost.event_id} does not exist"):
        store.append(batch)

    assert (store.count(), store.stream_version("deal:acme-cloud-1")) == (1, 1)


def test_a_failed_batch_leaves_no_gap_in_seq(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1")])
    with pytest.raises(UnknownStreamError):
        store.append([make_deal_reported("acme-cloud-2"), make_status_change("acme-cloud-9")])

    store.append([make_deal_reported("acme-cloud-3")])

    assert [e.seq for e in store.read_all()] == [1, 2]


def test_a_failed_batch_leaves_the_deal_projection_untouched(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", capacity_mw=1_000)])

    with pytest.raises(UnknownStreamError):
        store.append(
            [
                make_terms_revision("acme-cloud-1", capacity_mw=5_000),
                make_status_change("acme-cloud-9"),
            ]
        )

    rows = (
        store.cursor().execute("SELECT deal_id, capacity_mw, events FROM deal_current").fetchall()
    )
    assert rows == [("acme-cloud-1", 1_000.0, 1)]


def test_a_deal_cannot_be_reported_twice(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1")])

    with pytest.raises(InvalidEventError, match="deal acme-cloud-1 is already reported"):
        store.append([make_deal_reported("acme-cloud-1", capacity_mw=2_000)])


def test_a_link_to_an_unknown_deal_is_refused(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-2")])

    with pytest.raises(UnknownStreamError, match="deal acme-cloud-1 does not exist"):
        store.append([make_deals_linked("acme-cloud-2", "acme-cloud-1")])


def test_a_deal_cannot_be_linked_to_itself(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1")])

    with pytest.raises(InvalidEventError, match="cannot be linked to itself"):
        store.append([make_deals_linked("acme-cloud-1", "acme-cloud-1")])


def test_a_link_to_a_deal_reported_in_the_same_batch_is_accepted(store: EventStore) -> None:
    batch = [
        make_deal_reported("acme-cloud-1"),
        make_deal_reported("acme-cloud-2"),
        make_deals_linked("acme-cloud-2", "acme-cloud-1"),
    ]

    assert len(store.append(batch).recorded) == 3


def test_a_retraction_must_go_to_the_retracted_events_stream(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")
    store.append([target, make_deal_reported("acme-cloud-2")])
    misplaced = make_retraction(target).model_copy(update={"stream_id": "deal:acme-cloud-2"})

    with pytest.raises(InvalidEventError, match="belongs to deal:acme-cloud-1"):
        store.append([misplaced])


def test_an_event_cannot_be_retracted_in_the_batch_that_adds_it(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")

    with pytest.raises(InvalidEventError, match="cannot be retracted in the batch that adds it"):
        store.append([target, make_retraction(target)])


def test_an_event_cannot_be_retracted_twice(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")
    store.append([target])
    store.append([make_retraction(target)])

    with pytest.raises(InvalidEventError, match="already retracted"):
        store.append([make_retraction(target, "said again")])


def test_an_event_cannot_be_retracted_twice_in_one_batch(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")
    store.append([target])

    with pytest.raises(InvalidEventError, match="already retracted"):
        store.append([make_retraction(target), make_retraction(target, "said again")])


def test_a_retraction_cannot_be_retracted(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")
    store.append([target])
    retraction = store.append([make_retraction(target)]).recorded[0]

    with pytest.raises(InvalidEventError, match="a retraction cannot be retracted"):
        store.append([make_retraction(retraction)])


def test_the_lab_cannot_join_its_own_deal_as_a_counterparty(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", lab="openai")])

    with pytest.raises(InvalidEventError, match="lab"):
        store.append([make_counterparty_joined("acme-cloud-1", "openai", "partner")])


def test_an_event_that_is_not_a_deal_fact_cannot_open_a_deal_stream(store: EventStore) -> None:
    accepted = make_candidate_accepted(deal="ghost-deal")

    with pytest.raises((ValidationError, StoreError)):
        store.append([accepted.model_copy(update={"stream_id": "deal:ghost-deal"})])

    assert store.count() == 0


# -- optimistic concurrency --------------------------------------------------------------------


def test_an_append_at_the_expected_version_succeeds(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", expected_version=0)])

    result = store.append([make_status_change("acme-cloud-1", expected_version=1)])

    assert result.recorded[0].version == 2


def test_a_stale_expected_version_is_refused_with_both_versions(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1"), make_status_change("acme-cloud-1")])

    with pytest.raises(ConcurrencyError) as raised:
        store.append([make_capacity_online("acme-cloud-1", expected_version=1)])

    assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == (
        "deal:acme-cloud-1",
        1,
        2,
    )


def test_expected_versions_apply_event_by_event_within_a_batch(store: EventStore) -> None:
    batch = [
        make_deal_reported("acme-cloud-1", expected_version=0),
        make_status_change("acme-cloud-1", expected_version=1),
        make_capacity_online("acme-cloud-1", expected_version=2),
    ]

    result = store.append(batch)

    assert [e.version for e in result.recorded] == [1, 2, 3]


def test_a_new_stream_expected_at_a_later_version_is_refused(store: EventStore) -> None:
    with pytest.raises(ConcurrencyError, match="expected version 3, it is at 0"):
        store.append([make_deal_reported("acme-cloud-1", expected_version=3)])


def test_a_second_writer_on_the_same_file_is_refused_with_a_clear_message(
    db_path: Path, store: EventStore
) -> None:
    script = f"from store.log import EventStore\nEventStore({str(db_path)!r})\n"

    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT)},
    )

    assert run.returncode != 0
    assert "DatabaseLockedError" in run.stderr
    assert "is open for writing in another process" in run.stderr


# -- idempotency -------------------------------------------------------------------------------


def test_the_same_key_offered_twice_is_stored_once_and_reported_as_a_duplicate(
    store: EventStore,
) -> None:
    first = make_deal_reported("acme-cloud-1", idempotency_key="feed:hn:42")
    again = make_deal_reported("acme-cloud-1", idempotency_key="feed:hn:42")
    stored = store.append([first]).recorded[0]

    result = store.append([again])

    assert result.recorded == ()
    assert result.duplicates == (stored,)
    assert result.all_duplicates
    assert store.count() == 1


def test_the_same_event_offered_twice_without_a_key_is_stored_once(store: EventStore) -> None:
    event = make_deal_reported("acme-cloud-1")
    store.append([event])

    result = store.append([event])

    assert result.all_duplicates
    assert store.count() == 1


def test_a_replayed_event_with_its_expected_version_is_a_duplicate_not_a_conflict(
    store: EventStore,
) -> None:
    event = make_deal_reported("acme-cloud-1", expected_version=0)
    store.append([event, make_status_change("acme-cloud-1")])

    result = store.append([event])

    assert result.all_duplicates


def test_a_batch_mixing_new_and_stored_events_stores_only_the_new(store: EventStore) -> None:
    reported = make_deal_reported("acme-cloud-1")
    store.append([reported])
    change = make_status_change("acme-cloud-1")

    result = store.append([reported, change])

    assert [e.event_id for e in result.recorded] == [change.event_id]
    assert [e.event_id for e in result.duplicates] == [reported.event_id]


def test_the_same_key_with_a_different_payload_is_refused(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", capacity_mw=1_000, idempotency_key="k-1")])

    with pytest.raises(IdempotencyKeyReuseError, match="idempotency key 'k-1' is already stored"):
        store.append([make_deal_reported("acme-cloud-1", capacity_mw=2_000, idempotency_key="k-1")])


def test_the_same_key_in_another_stream_is_refused(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", idempotency_key="k-1")])

    with pytest.raises(IdempotencyKeyReuseError, match="DealReported in deal:acme-cloud-1"):
        store.append([make_deal_reported("acme-cloud-2", idempotency_key="k-1")])


def test_a_reused_key_in_a_batch_writes_nothing_of_the_batch(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1", idempotency_key="k-1")])

    with pytest.raises(IdempotencyKeyReuseError):
        store.append(
            [
                make_deal_reported("acme-cloud-2"),
                make_status_change("acme-cloud-1", idempotency_key="k-1"),
            ]
        )

    assert store.count() == 1


def test_the_same_key_with_a_different_payload_in_one_batch_is_refused(store: EventStore) -> None:
    batch = [
        make_deal_reported("acme-cloud-1", idempotency_key="k-1"),
        make_deal_reported("acme-cloud-2", idempotency_key="k-1"),
    ]

    with pytest.raises(IdempotencyKeyReuseError):
        store.append(batch)


def test_the_same_event_twice_in_one_batch_is_stored_once_and_reported(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1")])
    change = make_status_change("acme-cloud-1")

    result = store.append([change, change])

    assert [e.event_id for e in result.recorded] == [change.event_id]
    assert len(result.duplicates) == 1


def test_a_digest_posted_twice_for_the_same_week_is_stored_once(store: EventStore) -> None:
    store.append([make_digest_posted(week="2026-W05")])

    result = store.append([make_digest_posted(week="2026-W05")])

    assert result.all_duplicates


# -- reads -------------------------------------------------------------------------------------


def test_seq_is_gap_free_across_appends_and_streams(store: EventStore) -> None:
    store.append([make_deal_reported("acme-cloud-1"), make_deal_reported("acme-cloud-2")])
    store.append([make_status_change("acme-cloud-1")])

    store.append([make_capacity_online("acme-cloud-2"), make_digest_posted()])

    assert [e.seq for e in store.read_all()] == [1, 2, 3, 4, 5]
    assert store.head == 5


def test_read_all_reads_after_a_position_up_to_a_limit(store: EventStore) -> None:
    store.append([make_digest_posted(channel=str(1_000 + i)) for i in range(10)])

    page = list(store.read_all(after=3, limit=4))

    assert [e.seq for e in page] == [4, 5, 6, 7]


def test_read_all_reads_past_a_full_page(store: EventStore) -> None:
    count = READ_PAGE + 3
    store.append([make_digest_posted(channel=str(1_000 + i)) for i in range(count)])

    seqs = [e.seq for e in store.read_all()]

    assert seqs == list(range(1, count + 1))


def test_read_all_with_a_limit_across_pages_stops_at_the_limit(store: EventStore) -> None:
    store.append([make_digest_posted(channel=str(1_000 + i)) for i in range(READ_PAGE + 3)])

    seqs = [e.seq for e in store.read_all(after=1, limit=READ_PAGE + 1)]

    assert seqs == list(range(2, READ_PAGE + 3))


def test_read_all_of_an_empty_log_is_empty(store: EventStore) -> None:
    assert list(store.read_all()) == []


def test_read_stream_from_a_version(store: EventStore) -> None:
    store.append(
        [
            make_deal_reported("acme-cloud-1"),
            make_status_change("acme-cloud-1"),
            make_capacity_online("acme-cloud-1"),
        ]
    )

    events = store.read_stream("deal:acme-cloud-1", from_version=2)

    assert [e.version for e in events] == [2, 3]


def test_get_event_finds_an_event_by_id_and_none_for_an_unknown_id(store: EventStore) -> None:
    event = make_deal_reported("acme-cloud-1")
    store.append([event])

    found = store.get_event(event.event_id)

    assert found is not None and found.event_id == event.event_id
    assert store.get_event(make_deal_reported().event_id) is None


def test_a_stored_schema_0_payload_is_upcast_on_read(store: EventStore) -> None:
    old = json.dumps(
        {
            "lab": "openai",
            "kind": "cloud_contract",
            "status": "signed",
            "headline": "Old draft",
            "capacity_gw": 1.5,
        }
    )
    # A row as a pre-release computewatch wrote it; the log itself never rewrites rows.
    store.cursor().execute(
        "INSERT INTO events (seq, event_id, stream_id, version, type, schema, occurred_at,"
        " recorded_at, actor, source_url, idempotency_key, payload, deal_id, lab)"
        " VALUES (1, uuid(), 'deal:acme-draft', 1, 'DealReported', 0, $at, $at, 'cli',"
        " 'seed:draft.txt', 'draft-1', $payload::JSON, 'acme-draft', 'openai')",
        {"at": JAN_11, "payload": old},
    )

    [recorded] = store.read_stream("deal:acme-draft")

    assert isinstance(recorded.payload, DealReported)
    assert recorded.payload.title == "Old draft"
    assert recorded.payload.capacity_mw == 1_500.0
    assert recorded.schema_version == 0


def test_a_retraction_is_stored_with_its_target(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")
    store.append([target])

    recorded = store.append([make_retraction(target, "wrong lab")]).recorded[0]

    assert isinstance(recorded.payload, EventRetracted)
    assert recorded.payload.event_id == target.event_id
    assert store.cursor().execute(
        "SELECT target_event_id FROM events WHERE seq = 2"
    ).fetchone() == (target.event_id,)


# -- migrations --------------------------------------------------------------------------------


def test_a_new_database_records_every_bundled_migration(store: EventStore) -> None:
    rows = (
        store.cursor()
        .execute("SELECT version, name FROM schema_migrations ORDER BY version")
        .fetchall()
    )

    assert rows == [(m.version, m.name) for m in bundled_migrations()]
    assert rows[:2] == [(1, "events"), (2, "projections")]


def test_reopening_a_database_applies_no_migration_again(db_path: Path, clock: ManualClock) -> None:
    EventStore(db_path, clock=clock).close()

    with duckdb.connect(str(db_path)) as con:
        applied = migrate(con)
        count = con.execute("SELECT count(*) FROM schema_migrations").fetchone()

    assert applied == []
    assert count == (len(bundled_migrations()),)


def test_a_database_from_a_newer_computewatch_refuses_to_open(db_path: Path) -> None:
    EventStore(db_path).close()
    with duckdb.connect(str(db_path)) as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from_the_future')")

    with pytest.raises(
        MigrationError, match="schema version 999, newer than this computewatch knows"
    ):
        EventStore(db_path)


# -- the append-only rule ----------------------------------------------------------------------

# SQL that would change or remove stored events (or any row, for DELETE/TRUNCATE).
FORBIDDEN_SQL = re.compile(
    r"\bUPDATE\s+events\b|\bDELETE\s+FROM\b|\bTRUNCATE\b|\bINSERT\s+OR\s+REPLACE\s+INTO\s+events\b"
    r"|\bDROP\s+TABLE\s+(IF\s+EXISTS\s+)?events\b|\bON\s+CONFLICT\b.*\bDO\s+UPDATE\b",
    re.IGNORECASE,
)


def source_files() -> list[Path]:
    return [
        path
        for package in ("events", "store", "bot")
        for pattern in ("*.py", "*.sql")
        for path in sorted((REPO_ROOT / package).rglob(pattern))
    ]


def test_no_source_file_updates_or_deletes_events() -> None:
    files = source_files()

    offending = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FORBIDDEN_SQL.search(line)
    ]

    assert len(files) > 10
    assert offending == []


def test_the_append_only_scan_would_catch_an_update_of_events() -> None:
    assert FORBIDDEN_SQL.search('SQL = "UPDATE events SET payload = ?"')
    assert FORBIDDEN_SQL.search("delete from events where seq = 1")
    assert not FORBIDDEN_SQL.search("versions.update(plan.versions)")


# -- dates of the log --------------------------------------------------------------------------


def test_events_may_be_recorded_long_after_they_occurred(
    store: EventStore, clock: ManualClock
) -> None:
    clock.set(MAR_01)

    store.append([make_deal_reported("acme-cloud-1", occurred_at=JAN_11)])

    [event] = store.read_all()
    assert (event.occurred_at, event.recorded_at) == (JAN_11, MAR_01)
    assert event.occurred_at < FEB_01 < event.recorded_at
