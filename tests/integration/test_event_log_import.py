"""The bulk import of the log (EventStore.import_chunks / import_staged): the same guarantees as
append, over chunks in one transaction; and the rows the append path writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest

from events.envelope import NewEvent
from store.clock import ManualClock
from store.errors import ConcurrencyError, IdempotencyKeyReuseError
from store.log import EventStore, ImportRefusedError
from store.rows import stage_events
from tests.factories import (
    make_counterparty_joined,
    make_deal_reported,
    make_deals_linked,
    make_retraction,
    make_source_added,
    make_status_change,
    make_terms_revision,
)

# Every column of a stored event except the store's clock.
ROW = (
    "SELECT seq, event_id, stream_id, version, type, schema, occurred_at, actor, source_url, "
    "source_title, idempotency_key, payload::VARCHAR, deal_id, lab, kind, status, capacity_mw, "
    "value_usd, chips, term_years, online_from, location, title, online_mw, counterparties, "
    "link_relation, link_other, target_event_id FROM events ORDER BY seq"
)


def chunked(events: Sequence[NewEvent], size: int):  # type: ignore[no-untyped-def]
    """A source for import_chunks: the events staged `size` at a time."""
    return lambda: [stage_events(events[i : i + size]) for i in range(0, len(events), size)]


def rows(store: EventStore) -> list[tuple[object, ...]]:
    return store.cursor().execute(ROW).fetchall()


def a_history() -> list[NewEvent]:
    """Three deals with a little history each: terms, status, a link, a retraction."""
    first = make_deal_reported("acme-cloud-1", capacity_mw=1_000)
    revised = make_terms_revision("acme-cloud-1", capacity_mw=1_500)
    return [
        first,
        make_deal_reported("beta-dc-1", lab="anthropic", counterparties=(("google", "provider"),)),
        revised,
        make_status_change("beta-dc-1", status="operational"),
        make_deal_reported("gamma-chips-1", lab="xai", chips=("nvidia", "GB200", 100_000)),
        make_deals_linked("gamma-chips-1", "acme-cloud-1"),
        make_counterparty_joined("acme-cloud-1", "coreweave"),
        make_retraction(revised),
        make_source_added("beta-dc-1"),
    ]


def test_an_import_in_chunks_writes_the_rows_that_appending_writes(
    tmp_path: Path, clock: ManualClock
) -> None:
    events = a_history()
    with EventStore(tmp_path / "appended.duckdb", clock=clock) as appended:
        for event in events:  # one at a time: the INSERT ... VALUES path
            appended.append([event])
        expected = rows(appended)
    with EventStore(tmp_path / "batch.duckdb", clock=clock) as batch:
        batch.append(events[:7])  # a batch of more than a few: the Arrow path
        batch.append(events[7:])  # (a batch cannot retract what it adds)
        in_one_batch = rows(batch)

    with EventStore(tmp_path / "imported.duckdb", clock=clock) as imported:
        result = imported.import_chunks(chunked(events, 2))
        got = rows(imported)
        versions = {s: imported.stream_version(s) for s in ("deal:acme-cloud-1", "deal:beta-dc-1")}

    assert (result.imported, result.duplicates, result.first_seq, result.last_seq) == (9, 0, 1, 9)
    assert got == expected == in_one_batch
    assert versions == {"deal:acme-cloud-1": 4, "deal:beta-dc-1": 3}


def test_an_import_into_a_log_with_events_stores_only_the_new_ones(store: EventStore) -> None:
    events = a_history()
    store.append(events[:4])

    result = store.import_chunks(chunked(events, 3))

    assert (result.imported, result.duplicates, result.first_seq, result.last_seq) == (5, 4, 5, 9)
    assert [e.version for e in store.read_stream("deal:acme-cloud-1")] == [1, 2, 3, 4]
    assert store.append([make_status_change("acme-cloud-1", expected_version=4)]).recorded


@pytest.mark.parametrize("log_is_empty", [True, False])
def test_an_event_repeated_within_an_import_is_stored_once(
    store: EventStore, log_is_empty: bool
) -> None:
    if not log_is_empty:
        store.append([make_deal_reported("other-deal-1")])
    events = a_history()
    repeated = [
        *events[:5],
        events[1],
        *events[5:],
        events[4],
    ]  # again in the same and a later chunk

    result = store.import_chunks(chunked(repeated, 4))

    assert (result.imported, result.duplicates) == (9, 2)
    assert [e.event_id for e in store.read_all() if e.stream_id != "deal:other-deal-1"] == [
        e.event_id for e in events
    ]


def test_a_refused_event_in_a_later_chunk_writes_nothing_and_says_which(
    store: EventStore,
) -> None:
    events = [*a_history(), make_status_change("acme-cloud-9")]  # a deal never reported

    with pytest.raises(ImportRefusedError, match="deal acme-cloud-9 does not exist yet") as info:
        store.import_chunks(chunked(events, 4))

    assert info.value.position == 9
    assert (store.count(), store.head, store.deal_ids()) == (0, 0, [])


def test_after_a_refused_import_into_an_empty_log_keys_are_still_unique(
    store: EventStore,
) -> None:
    event = make_deal_reported("acme-cloud-1")
    with pytest.raises(ImportRefusedError):
        store.import_chunks(chunked([event, make_status_change("acme-cloud-9")], 1))

    store.append([event])
    again = store.append([event])

    assert again.all_duplicates and store.count() == 1


def test_an_expected_version_is_checked_across_chunks(store: EventStore) -> None:
    events = [
        make_deal_reported("acme-cloud-1"),
        make_status_change("acme-cloud-1", expected_version=1),
        make_status_change("acme-cloud-1", expected_version=1),  # the stream is at 2 by then
    ]

    with pytest.raises(ImportRefusedError) as info:
        store.import_chunks(chunked(events, 2))

    assert info.value.position == 2 and isinstance(info.value.error, ConcurrencyError)
    assert "expected version 1, it is at 2" in str(info.value)
    assert store.count() == 0


def test_an_import_refuses_what_append_refuses(store: EventStore) -> None:
    target = make_deal_reported("acme-cloud-1")
    cases = {
        "openai is the lab of acme-cloud-1, not its counterparty": [
            target,
            make_counterparty_joined("acme-cloud-1", "openai"),
        ],
        "already retracted": [
            target,
            make_status_change("acme-cloud-1"),
            make_retraction(target),
            make_retraction(target, "said again"),
        ],
        "deal acme-cloud-7 does not exist": [
            target,
            make_deals_linked("acme-cloud-1", "acme-cloud-7"),
        ],
        "already reported": [target, make_deal_reported("acme-cloud-1", capacity_mw=5)],
    }
    for message, events in cases.items():
        with pytest.raises(ImportRefusedError, match=message) as info:
            store.import_chunks(chunked(events, 2))
        assert info.value.position == len(events) - 1, message

    assert store.count() == 0


def test_the_same_key_for_another_fact_in_an_import_is_refused(store: EventStore) -> None:
    first = make_deal_reported("acme-cloud-1", idempotency_key="report-1")
    other = make_deal_reported("acme-cloud-2", idempotency_key="report-1")

    with pytest.raises(ImportRefusedError, match="'report-1' is already stored") as info:
        store.import_chunks(chunked([first, make_deal_reported("beta-dc-1"), other], 5))

    assert isinstance(info.value.error, IdempotencyKeyReuseError) and info.value.position == 2
    assert store.count() == 0


def test_a_store_reopened_after_an_interrupted_import_rebuilds_its_unique_keys(
    db_path: Path, clock: ManualClock
) -> None:
    event = make_deal_reported("acme-cloud-1")
    EventStore(db_path, clock=clock).close()
    with duckdb.connect(str(db_path)) as con:  # what a kill in the middle of an import leaves
        con.execute("DROP INDEX events_idempotency_key")
        con.execute("DROP INDEX events_stream_version")

    with EventStore(db_path, clock=clock) as store:
        store.append([event])
        again = store.append([event])
        count = store.count()

    assert again.all_duplicates and count == 1
