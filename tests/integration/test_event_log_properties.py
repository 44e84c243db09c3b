"""Properties of the event log on real DuckDB files: order, contiguous versions, gap-free seq,
idempotent replays, and one winner per version among concurrent appenders (threads and async)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.envelope import NewEvent
from store.errors import ConcurrencyError
from store.facade import AsyncEventStore
from store.log import AppendResult, EventStore
from tests.factories import (
    make_capacity_online,
    make_deal_reported,
    make_digest_posted,
    make_source_added,
    make_status_change,
    manual_clock,
)

PROPERTY_SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
THREADS = 8
ROUNDS = 12


@contextmanager
def fresh_store() -> Iterator[EventStore]:
    """A new store in its own directory: function fixtures are not reset between examples."""
    with (
        tempfile.TemporaryDirectory() as directory,
        EventStore(Path(directory) / "log.duckdb", clock=manual_clock()) as store,
    ):
        yield store


def draw_batches(data: st.DataObject) -> list[list[NewEvent]]:
    """Batches of valid events over a few streams, with re-offers of events of earlier batches."""
    deals: list[str] = []
    offered: list[NewEvent] = []
    batches: list[list[NewEvent]] = []
    digests = 0
    for _ in range(data.draw(st.integers(1, 5), label="batches")):
        batch: list[NewEvent] = []
        for _ in range(data.draw(st.integers(1, 6), label="batch size")):
            choice = data.draw(
                st.sampled_from(
                    ["report", "update", "update", "digest", "reoffer"]
                    if deals
                    else ["report", "digest"]
                )
            )
            if choice == "report":
                deal = f"acme-deal-{len(deals)}"
                deals.append(deal)
                batch.append(make_deal_reported(deal))
            elif choice == "update":
                deal = data.draw(st.sampled_from(deals))
                maker = data.draw(
                    st.sampled_from([make_status_change, make_capacity_online, make_source_added])
                )
                batch.append(maker(deal))
            elif choice == "digest":
                # A new week each time: a key repeated within one batch is another test's case.
                channel = data.draw(st.sampled_from(["1001", "1002"]))
                digests += 1
                batch.append(make_digest_posted(channel=channel, week=f"2026-W{digests:02d}"))
            elif offered:
                batch.append(data.draw(st.sampled_from(offered)))
        if not batch:
            continue
        offered.extend(batch)
        batches.append(batch)
    return batches


def new_events_in_order(batches: list[list[NewEvent]]) -> list[NewEvent]:
    seen: set[str] = set()
    expected = []
    for batch in batches:
        for event in batch:
            if event.key not in seen:
                seen.add(event.key)
                expected.append(event)
    return expected


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_sequence_of_valid_appends_reads_back_in_order(data: st.DataObject) -> None:
    batches = draw_batches(data)

    with fresh_store() as store:
        for batch in batches:
            store.append(batch)
        read = list(store.read_all())

    assert [e.event_id for e in read] == [e.event_id for e in new_events_in_order(batches)]


@PROPERTY_SETTINGS
@given(data=st.data())
def test_any_sequence_of_appends_leaves_contiguous_versions_and_gap_free_seq(
    data: st.DataObject,
) -> None:
    batches = draw_batches(data)

    with fresh_store() as store:
        for batch in batches:
            store.append(batch)
        read = list(store.read_all())
        head = store.head

    versions: dict[str, list[int]] = defaultdict(list)
    for event in read:
        versions[event.stream_id].append(event.version)
    assert [e.seq for e in read] == list(range(1, len(read) + 1))
    assert head == len(read)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())


@PROPERTY_SETTINGS
@given(data=st.data())
def test_re_offered_events_are_reported_as_duplicates_and_stored_once(data: st.DataObject) -> None:
    batches = draw_batches(data)

    results: list[AppendResult] = []
    with fresh_store() as store:
        for batch in batches:
            results.append(store.append(batch))
        count = store.count()

    stored_before: set[str] = set()
    for batch, result in zip(batches, results, strict=True):
        assert [e.idempotency_key for e in result.duplicates] == [
            e.key for e in batch if e.key in stored_before
        ]
        stored_before |= {e.key for e in batch}
    assert count == len(stored_before)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_replaying_every_batch_adds_nothing(data: st.DataObject) -> None:
    batches = draw_batches(data)

    with fresh_store() as store:
        for batch in batches:
            store.append(batch)
        before = list(store.read_all())
        replays = [store.append(batch) for batch in batches]
        after = list(store.read_all())

    assert all(r.recorded == () and r.all_duplicates for r in replays)
    assert after == before


def race_threads(store: EventStore, version: int) -> tuple[int, int]:
    """THREADS threads append to acme-race at `version` at once: (wins, conflicts)."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def contend() -> None:
        event = make_capacity_online("acme-race", 10, expected_version=version)
        barrier.wait()
        try:
            store.append([event])
            outcomes.append("won")
        except ConcurrencyError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=contend) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes.count("won"), outcomes.count("conflict")


def test_concurrent_threads_at_the_same_version_have_exactly_one_winner() -> None:
    with fresh_store() as store:
        store.append([make_deal_reported("acme-race")])

        outcomes = [race_threads(store, version) for version in range(1, ROUNDS + 1)]

        versions = [e.version for e in store.read_stream("deal:acme-race")]
    assert outcomes == [(1, THREADS - 1)] * ROUNDS
    assert versions == list(range(1, ROUNDS + 2))


async def test_concurrent_async_appends_at_the_same_version_have_exactly_one_winner() -> None:
    outcomes: list[tuple[int, int]] = []

    with fresh_store() as store:
        async with AsyncEventStore(store) as facade:
            await facade.append([make_deal_reported("acme-race")])
            for version in range(1, ROUNDS + 1):
                events = [
                    make_capacity_online("acme-race", 10, expected_version=version)
                    for _ in range(THREADS)
                ]
                results = await asyncio.gather(
                    *(facade.append([e]) for e in events), return_exceptions=True
                )
                wins = [r for r in results if isinstance(r, AppendResult)]
                conflicts = [r for r in results if isinstance(r, ConcurrencyError)]
                outcomes.append((len(wins), len(conflicts)))
            versions = await facade.read(store.read_stream, "deal:acme-race")

    assert outcomes == [(1, THREADS - 1)] * ROUNDS
    assert [e.version for e in versions] == list(range(1, ROUNDS + 2))


@settings(max_examples=15, deadline=None)
@given(appenders=st.integers(1, 24), streams=st.integers(1, 4))
def test_concurrent_async_appends_without_expected_versions_all_land_gap_free(
    appenders: int, streams: int
) -> None:
    async def run(store: EventStore) -> list[AppendResult]:
        async with AsyncEventStore(store) as facade:
            await facade.append([make_deal_reported(f"acme-{s}") for s in range(streams)])
            return await asyncio.gather(
                *(
                    facade.append([make_capacity_online(f"acme-{i % streams}", 1)])
                    for i in range(appenders)
                )
            )

    with fresh_store() as store:
        results = asyncio.run(run(store))
        read = list(store.read_all())

    assert all(len(r.recorded) == 1 for r in results)
    assert [e.seq for e in read] == list(range(1, streams + appenders + 1))
    per_stream: dict[str, list[int]] = defaultdict(list)
    for event in read:
        per_stream[event.stream_id].append(event.version)
    assert all(v == list(range(1, len(v) + 1)) for v in per_stream.values())


async def test_the_async_facade_commits_waiting_appends_together() -> None:
    with fresh_store() as store:
        async with AsyncEventStore(store) as facade:
            await facade.append([make_deal_reported("acme-group")])
            commits_before = facade.commits
            await asyncio.gather(
                *(facade.append([make_capacity_online("acme-group", 1)]) for _ in range(50))
            )
            commits = facade.commits - commits_before

    assert 1 <= commits < 50
