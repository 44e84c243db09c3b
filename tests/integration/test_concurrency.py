"""Concurrency (issue 8): 10 writers x 100 appends x 10 events to overlapping streams, through
the async facade and through the HTTP API. Each expected version is won by exactly one writer,
every other writer is told of the conflict (ConcurrencyError / 409 with the stream and both
versions), and the log holds exactly the batches that were confirmed, with no gap.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.api import ApiDeps, serve_api
from bot.services import open_services
from events.envelope import NewEvent
from store.errors import ConcurrencyError
from store.facade import AsyncEventStore
from store.log import EventStore
from tests.factories import (
    make_capacity_online,
    make_deal_reported,
    make_source_added,
    make_status_change,
    make_terms_revision,
    manual_clock,
)
from tests.integration.headless import Batch, check_log

WRITERS = 10
APPENDS = 100
EVENTS = 10
DEALS = ("acme-race-1", "acme-race-2", "acme-race-3", "acme-race-4")
TOKEN = "concurrency-token-0b4e"


@dataclass(frozen=True)
class Conflict:
    """What the writer was told when it lost: the stream and the versions expected and found."""

    stream_id: str
    expected: int
    actual: int


@dataclass
class Attempt:
    batch: Batch
    starts: dict[str, int]  # stream -> the version the writer expected it to stand at
    conflict: Conflict | None = None
    versions: list[tuple[str, int]] = field(default_factory=list)  # what was stored, if won


Append = Callable[[list[NewEvent]], Awaitable[list[tuple[str, int]] | Conflict]]


def next_events(rng: random.Random, name: str, known: dict[str, int]) -> list[NewEvent]:
    """Ten events on one or two of the shared deals, expecting the versions this writer knows."""
    deals = rng.sample(DEALS, k=rng.choice((1, 2)))
    events = []
    for n in range(EVENTS):
        deal = deals[n % len(deals)]
        expected = known[f"deal:{deal}"] + sum(1 for e in events if e.stream_id == f"deal:{deal}")
        key = f"{name}-e{n}"
        event = fact(rng, deal, key)
        events.append(
            event.model_copy(update={"idempotency_key": key, "expected_version": expected})
        )
    return events


def fact(rng: random.Random, deal: str, key: str) -> NewEvent:
    choice = rng.randrange(4)
    if choice == 0:
        return make_terms_revision(deal, capacity_mw=rng.randint(1, 40) * 50)
    if choice == 1:
        return make_status_change(deal, rng.choice(("signed", "operational")))
    if choice == 2:
        return make_capacity_online(deal, rng.randint(1, 10) * 10)
    return make_source_added(deal, source_url=f"https://news.example.com/{key}")


async def write(writer: int, append: Append) -> list[Attempt]:
    """One writer: 100 appends, each expecting the versions it last heard of."""
    rng = random.Random(writer)
    known = {f"deal:{d}": 1 for d in DEALS}
    attempts = []
    for n in range(APPENDS):
        events = next_events(rng, f"w{writer}-a{n}", known)
        starts: dict[str, int] = {}
        for e in events:
            starts.setdefault(e.stream_id, e.expected_version)  # type: ignore[arg-type]
        attempt = Attempt(Batch(f"w{writer}-a{n}", [as_json(e) for e in events]), starts)
        outcome = await append(events)
        if isinstance(outcome, Conflict):
            attempt.conflict = outcome
            known[outcome.stream_id] = outcome.actual
        else:
            attempt.versions = outcome
            for stream, version in outcome:
                known[stream] = version
        attempts.append(attempt)
    return attempts


def as_json(event: NewEvent) -> dict[str, Any]:
    return {**event.to_json_dict(), "expected_version": event.expected_version}


def check_outcomes(attempts: list[Attempt], db: Path, setup: int) -> tuple[int, int]:
    """Exactly one win per (stream, expected version); losers were told why and wrote nothing;
    the log is exactly the setup plus the winning batches. Returns (wins, conflicts)."""
    won = [a for a in attempts if a.conflict is None]
    lost = [a for a in attempts if a.conflict is not None]
    for a in won:  # stored exactly at the versions the writer expected
        assert a.versions == [(e["stream_id"], e["expected_version"] + 1) for e in a.batch.events]
    for a in lost:  # the conflict names a stream of the batch, what it expected and what was
        assert a.conflict is not None
        assert a.starts.get(a.conflict.stream_id) == a.conflict.expected != a.conflict.actual
    with EventStore(db) as store:
        final = {f"deal:{d}": store.stream_version(f"deal:{d}") for d in DEALS}
        head = store.head
    wins: dict[str, Counter[int]] = defaultdict(Counter)
    for a in won:
        for stream, start in a.starts.items():
            wins[stream][start] += 1
    for a in attempts:
        for stream, start in a.starts.items():
            expected_wins = 1 if start < final[stream] else 0
            assert start <= final[stream]
            assert wins[stream][start] == expected_wins, (stream, start, wins[stream][start])
    check_log(db, [a.batch for a in attempts], acked=[a.batch for a in won])
    assert head == setup + EVENTS * len(won)  # the losers wrote nothing, the winners all
    return len(won), len(lost)


def setup_deals(db: Path) -> int:
    with EventStore(db, clock=manual_clock()) as store:
        store.append([make_deal_reported(d, idempotency_key=f"setup-{d}") for d in DEALS])
        return store.head


async def test_ten_writers_through_the_async_facade_win_each_version_once(tmp_path: Path) -> None:
    db = tmp_path / "race.duckdb"
    setup = setup_deals(db)
    store = EventStore(db, clock=manual_clock())

    async def append(events: list[NewEvent]) -> list[tuple[str, int]] | Conflict:
        try:
            result = await facade.append(events)
        except ConcurrencyError as exc:
            return Conflict(exc.stream_id, exc.expected, exc.actual)
        assert not result.duplicates
        return [(e.stream_id, e.version) for e in result.recorded]

    async with AsyncEventStore(store) as facade:
        results = await asyncio.gather(*(write(w, append) for w in range(WRITERS)))
    commits = facade.commits
    store.close()

    wins, conflicts = check_outcomes([a for r in results for a in r], db, setup)
    assert wins > 0 and conflicts > 0 and wins + conflicts == WRITERS * APPENDS
    print(
        f"\nasync facade: {WRITERS * APPENDS} appends, {wins} won, {conflicts} conflicts "
        f"detected, 0 events lost, {commits} group commits"
    )


@asynccontextmanager
async def running_api(db: Path) -> AsyncIterator[str]:
    services = open_services(db, seed=False, clock=manual_clock())
    writer = AsyncEventStore(services.store)
    writer.start()
    deps = ApiDeps(
        events=writer,
        context=services.context,
        commands=services.commands,
        token=SecretStr(TOKEN),
    )
    runner = await serve_api(deps, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await writer.aclose()
        services.close()


async def test_ten_writers_through_the_http_api_win_each_version_once(tmp_path: Path) -> None:
    db = tmp_path / "race.duckdb"
    setup = setup_deals(db)
    bodies: list[dict[str, Any]] = []

    async with running_api(db) as url, aiohttp.ClientSession(url) as http:

        async def append(events: list[NewEvent]) -> list[tuple[str, int]] | Conflict:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            body = [as_json(e) for e in events]
            async with http.post("/events", json=body, headers=headers) as response:
                answer = await response.json()
            if response.status == 409:
                bodies.append(answer)
                return Conflict(
                    answer["stream_id"], answer["expected_version"], answer["actual_version"]
                )
            assert response.status == 201, answer
            assert answer["new"] == EVENTS and answer["duplicates"] == 0
            return [(e["stream_id"], e["version"]) for e in answer["events"]]

        results = await asyncio.gather(*(write(w, append) for w in range(WRITERS)))

    wins, conflicts = check_outcomes([a for r in results for a in r], db, setup)
    assert wins > 0 and conflicts > 0 and wins + conflicts == WRITERS * APPENDS
    for body in bodies:  # a clear answer: what conflicted, and that nothing was written
        assert body["error"] == "version_conflict"
        assert body["stream_id"] in body["detail"] and "Nothing was written" in body["detail"]
        assert f"expected version {body['expected_version']}" in body["detail"]
    print(
        f"\nHTTP API: {WRITERS * APPENDS} appends, {wins} won, {conflicts} conflicts "
        "detected (409), 0 events lost"
    )
