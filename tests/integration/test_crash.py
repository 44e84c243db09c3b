"""The crash suite (issue 8): `computewatch run` is killed with SIGKILL at random moments while
clients stream batches of events to its HTTP API, 50 times. After every kill the log opens,
seq and every stream's versions are contiguous, no batch is stored in part, nothing confirmed
is lost, the maintained projection and positions equal a fold of the log, and re-sending what
was in flight (same idempotency keys) completes it with no duplicate.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.headless import (
    AUTH,
    Batch,
    HeadlessBot,
    LogCheck,
    Writer,
    check_log,
)

KILLS = 50
WRITERS = 3
LEDGER_EVENTS = 157
# One kill in five lands during start-up (imports, migrations, seeding, the first snapshot);
# the others while batches stream in, up to this long after the API answered.
EARLY_KILLS = 0.2
MAX_RUN_S = 0.4
SQL_PROBE = "SELECT count(*) FROM events"


def copy_crashed(db: Path, into: Path) -> Path:
    """The database file and its WAL as the kill left them, to check without recovering the
    original: the next start of the bot must do its own recovery."""
    into.mkdir(exist_ok=True)
    copy = into / db.name
    for old in into.iterdir():
        old.unlink()
    for suffix in ("", ".wal"):
        source = db.with_name(db.name + suffix)
        if source.exists():
            shutil.copyfile(source, copy.with_name(copy.name + suffix))
    return copy


async def query_sql(http: aiohttp.ClientSession, url: str) -> int:
    """Ask /sql now and then: each answer after a write checkpoints the database and copies it
    (the SQL snapshot), so that kills also land in the middle of a checkpoint."""
    answered = 0
    while True:
        try:
            async with http.post(f"{url}/sql", json={"query": SQL_PROBE}) as response:
                assert response.status == 200, await response.text()
                answered += 1
        except (TimeoutError, aiohttp.ClientError):
            return answered
        await asyncio.sleep(0.05)


async def resend_in_flight(http: aiohttp.ClientSession, url: str, writers: list[Writer]) -> int:
    """Re-send every batch that had no answer when the bot died; how many were already stored."""
    already = 0
    for writer in writers:
        batch = writer.in_flight
        if batch is None:
            continue
        async with http.post(f"{url}/events", json=batch.events, headers=AUTH) as response:
            body = await response.json()
            assert response.status in (200, 201), f"re-send of {batch.name}: {body}"
            writer.acknowledge(batch, body, response.status)
            already += body["duplicates"] > 0
    return already


@pytest.mark.timeout(600)
async def test_fifty_sigkills_lose_no_confirmed_event_and_leave_no_partial_batch(
    tmp_path: Path,
) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261122")))  # other seeds: explore
    db = tmp_path / "crash.duckdb"
    bot = HeadlessBot(db, tmp_path / "bot.log", seed=True)
    writers = [Writer(f"w{i}", random.Random(rng.random())) for i in range(WRITERS)]
    startups: list[float] = []
    checks: list[LogCheck] = []
    in_flight_at_kill = resent_already_stored = sql_answers = 0
    pending: asyncio.Task[LogCheck] | None = None
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(timeout=timeout) as http:
        for kill in range(KILLS):
            bot.start()
            if rng.random() < EARLY_KILLS:
                await asyncio.sleep(rng.uniform(0, statistics.median(startups or [0.5])))
            else:
                startups.append(await bot.wait_ready(http))
                resent_already_stored += await resend_in_flight(http, bot.url, writers)
                tasks = [asyncio.create_task(w.stream(http, bot.url)) for w in writers]
                sql = asyncio.create_task(query_sql(http, bot.url))
                await asyncio.sleep(rng.uniform(0, MAX_RUN_S))
                bot.kill()
                await asyncio.gather(*tasks)
                sql_answers += await sql
            if bot.proc is not None:
                bot.kill()
            in_flight_at_kill += sum(w.in_flight is not None for w in writers)
            # The check reads a copy of what the kill left, while the bot starts again.
            if pending is not None:
                checks.append(await pending)
            crashed = copy_crashed(db, tmp_path / f"crashed-{kill % 2}")
            pending = asyncio.create_task(
                asyncio.to_thread(check_log, crashed, sent(writers), acked=acked(writers))
            )
        checks.append(await pending)

        bot.start()
        await bot.wait_ready(http)
        resent_already_stored += await resend_in_flight(http, bot.url, writers)
        assert bot.stop() == 0, bot.output()

    final = check_log(db, sent(writers), acked=acked(writers))
    confirmed = [k for b in acked(writers) for k in b.keys]
    assert all(k in final.keys for k in confirmed)
    assert final.head == final.ledger_events + len(confirmed)  # nothing else, nothing twice
    assert final.ledger_events == LEDGER_EVENTS
    assert all(c.ledger_events in (0, LEDGER_EVENTS) for c in checks)  # the seed is one batch
    print(
        f"\ncrash suite: {KILLS} SIGKILLs survived in {time.monotonic() - started:.1f} s; "
        f"{len(acked(writers))} batches ({len(confirmed)} events) confirmed, 0 lost; "
        f"{in_flight_at_kill} batches in flight at a kill, re-sent: "
        f"{resent_already_stored} had been stored, the rest stored on re-send, 0 duplicates; "
        f"{sql_answers} /sql answers (snapshot checkpoints) meanwhile; "
        f"start-up to /health median {statistics.median(startups):.2f} s "
        f"(max {max(startups):.2f} s)"
    )


def sent(writers: list[Writer]) -> list[Batch]:
    return [b for w in writers for b in w.acked] + [w.in_flight for w in writers if w.in_flight]


def acked(writers: list[Writer]) -> list[Batch]:
    return [b for w in writers for b in w.acked]
