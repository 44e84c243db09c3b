"""`interaction` group: Discord interaction latency through the real discord.py client.

The bot runs on a scratch copy of the synthetic log, connected over 127.0.0.1 to the fake
Discord of the tests (tests/fakediscord.py); each round sends 50 /position commands at once
and times each from the INTERACTION_CREATE dispatch to the bot's callback (its first
response) as the fake receives it. The gateway heartbeat runs every HEARTBEAT_S meanwhile.

Three bots in turn, in the same run: the bot as configured (its answer cache on; the log does
not change, so after the warm-up every answer is kept), the same with the cache off
(answer_cache_size=0: each command reads the store), and the cache on with one event appended
before each round (every round's first question of a lab reads the store, the others await it).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from benchmarks import synth

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

CONCURRENCY = 50
HEARTBEAT_S = 0.25
# A beat this much later than its interval means the bot's event loop was blocked that long.
HEARTBEAT_SLACK_S = 0.25
DEADLINE_S = 3.0


class Results(Protocol):
    def add(self, name: str, value: float, unit: str) -> None: ...


@dataclass
class Measured:
    latencies: list[float]  # seconds, interaction in -> callback out
    answers: list[float]  # seconds, interaction in -> the reply visible (after a deferral too)
    deferred: int  # commands answered with "thinking..." first
    expired: int  # refused by the fake as later than Discord's 3 s
    late_heartbeats: int
    max_heartbeat_gap: float
    heartbeats: int


def scratch_copy(n: int, name: str) -> Path:
    path = synth.RESULTS / "scratch" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)
    shutil.copyfile(synth.ensure_db(n), path)
    return path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def append_one(bot: ComputewatchBot, n: int) -> None:
    """One SourceAdded through the bot's writer: the log's head moves, kept answers go stale."""
    from tests.factories import make_source_added

    event = make_source_added(
        bot.services.store.deal_ids()[n],
        source_url=f"https://news.example.com/interaction/{n}",
        occurred_at=datetime.now(UTC),
    )
    await bot.store.append([event])


async def measure(
    db: Path,
    rounds: int,
    concurrency: int = CONCURRENCY,
    *,
    cache_size: int | None = None,
    append_each_round: bool = False,
) -> Measured:
    """Rounds of `concurrency` /position at once; cache_size None: the setting's default."""
    from bot import Settings, create_bot
    from bot.services import open_services
    from tests.fakediscord import CallbackType, FakeDiscord, InteractionRecord, running

    services = await asyncio.to_thread(open_services, db, seed=False)
    fake = FakeDiscord(
        heartbeat_interval=HEARTBEAT_S, interaction_deadline=DEADLINE_S, wait_timeout=60.0
    )
    await fake.start()
    fake.patch_discord()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token="fake-bot-token",
        discord_guild_id=fake.guild_id,
        computewatch_db=db,
        discord_charts=False,
        **({} if cache_size is None else {"answer_cache_size": cache_size}),
    )
    bot = create_bot(settings, services=services, guild_ready_timeout=0.01)
    latencies: list[float] = []
    answers: list[float] = []
    deferred = 0

    def done(record: InteractionRecord) -> bool:
        return bool(record.callbacks) or record in fake.expired

    async def answer_time(record: InteractionRecord) -> float:
        await fake.wait_until(lambda: done(record) and bool(record.replies))
        return time.monotonic() - record.injected_at

    try:
        async with running(bot, within=120):
            for lab in synth.LABS:  # warm-up: each lab once, one at a time
                record = await fake.invoke_command("position", {"lab": lab})
                await fake.wait_until(lambda r=record: done(r) and bool(r.replies))
            first_beat = len(fake.heartbeat_log)
            for round_ in range(rounds):
                if append_each_round:
                    await append_one(bot, round_)
                labs = [synth.LABS[(round_ + i) % len(synth.LABS)] for i in range(concurrency)]
                records = await asyncio.gather(
                    *(fake.invoke_command("position", {"lab": lab}) for lab in labs)
                )
                # The round ends when every user sees an answer (after a deferral, its reply).
                answers += await asyncio.gather(*(answer_time(r) for r in records))
                for record in records:
                    if record.response_time is not None:
                        latencies.append(record.response_time)
                    callback = record.callback
                    if callback and callback.type == CallbackType.DEFERRED_CHANNEL_MESSAGE:
                        deferred += 1
                    fake.forget(record)
            late = fake.late_heartbeats(HEARTBEAT_SLACK_S)
            beats = fake.heartbeat_log[first_beat:]
            gaps = [b.received - a.received for a, b in zip(beats, beats[1:], strict=False)]
            return Measured(
                latencies=latencies,
                answers=answers,
                deferred=deferred,
                expired=len(fake.expired),
                late_heartbeats=len(late),
                max_heartbeat_gap=max(gaps, default=0.0),
                heartbeats=len(beats),
            )
    finally:
        await fake.stop()
        await asyncio.to_thread(services.close)


def bench_interaction(r: Results, n: int, quick: bool) -> None:
    db = scratch_copy(n, "interaction.duckdb")
    rounds = 3 if quick else 10
    m = asyncio.run(measure(db, rounds=rounds))
    uncached = asyncio.run(measure(db, rounds=rounds, cache_size=0))
    # Last: it writes to the scratch copy.
    appending = asyncio.run(measure(db, rounds=rounds, append_each_round=True))
    report(r, m)
    for suffix, other in (("uncached", uncached), ("after_append", appending)):
        ms = [x * 1000 for x in other.latencies]
        r.add(f"interaction_p50_ms_1m_{suffix}", statistics.median(ms), "ms")
        r.add(f"interaction_p99_ms_1m_{suffix}", percentile(ms, 0.99), "ms")
        r.add(f"interaction_deferred_1m_{suffix}", float(other.deferred), "interactions")
        r.add(f"interaction_unanswered_1m_{suffix}", float(other.expired), "interactions")
        r.add(f"interaction_heartbeats_late_1m_{suffix}", float(other.late_heartbeats), "beats")


def report(r: Results, m: Measured) -> None:
    ms = [x * 1000 for x in m.latencies]
    r.add("interaction_p50_ms_1m", statistics.median(ms), "ms")
    r.add("interaction_p99_ms_1m", percentile(ms, 0.99), "ms")
    r.add("interaction_max_ms_1m", max(ms), "ms")
    answer_ms = [x * 1000 for x in m.answers]
    r.add("interaction_answer_p50_ms_1m", statistics.median(answer_ms), "ms")
    r.add("interaction_answer_p99_ms_1m", percentile(answer_ms, 0.99), "ms")
    r.add("interaction_deferred_1m", float(m.deferred), "interactions")
    r.add("interaction_unanswered_1m", float(m.expired), "interactions")
    r.add("interaction_heartbeats_late_1m", float(m.late_heartbeats), "beats")
    r.add(
        "interaction_heartbeat_max_gap_ms_1m",
        m.max_heartbeat_gap * 1000,
        f"ms (interval {HEARTBEAT_S * 1000:.0f})",
    )
