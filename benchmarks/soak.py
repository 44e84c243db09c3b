"""`soak` group (only with `--only soak`; not in CI): the bot as `computewatch run` runs it, for
10 minutes (about 1 with `--quick`), with everything at a low rate.

What runs: `bot.runner.serve_with_background` (the Discord bot, the single writer, the HTTP API
and feed polling) on a fresh database seeded with the bundled ledger, against the fake Discord of
the tests (tests/fakediscord.py) and a news feed on 127.0.0.1 with new articles at every poll.
Meanwhile: Discord interactions (the load test's mix, a few a second, with page turns), appends
through POST /events, SQL through POST /sql, API reads. Every few seconds the process's RSS, open
file descriptors, threads and asyncio tasks are sampled; the figures compare the last third of
the samples with the first third. Warnings and errors logged anywhere are counted; errors are
listed on stderr. The samples are written to benchmarks/results/soak_samples.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from benchmarks import synth

FULL_S = 600.0
QUICK_S = 60.0
TOKEN = "soak-api-token"
HEARTBEAT_S = 1.0
HEARTBEAT_SLACK_S = 0.5
INTERACTIONS_PER_S = 3.0
APPEND_EVERY_S = 1.0
SQL_EVERY_S = 5.0
API_READ_EVERY_S = 2.0
REVIEW_CHANNEL_ID = 1_100_000_000_000_000_012
SQL = "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY n DESC"


class Results(Protocol):
    def add(self, name: str, value: float, unit: str) -> None: ...


@dataclass
class Sample:
    t: float  # seconds since the start
    rss_mb: float
    open_files: int
    threads: int
    tasks: int
    head: int


@dataclass
class Counts:
    interactions: int = 0
    unanswered: int = 0
    failed: int = 0
    deferred: int = 0
    page_turns: int = 0
    appends: int = 0
    append_errors: int = 0
    sql: int = 0
    sql_errors: int = 0
    api_reads: int = 0
    api_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    harness_errors: list[str] = field(default_factory=list)


class LogCounter(logging.Handler):
    """Counts records of WARNING and above; keeps the errors' first lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warnings = 0
        self.errors: list[str] = []
        self.warning_kinds: dict[str, int] = {}
        self._lock_counts = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_counts:
            if record.levelno >= logging.ERROR:
                self.errors.append(f"{record.name}: {record.getMessage()}"[:300])
            else:
                self.warnings += 1
                kind = f"{record.name}: {record.msg}"[:120]
                self.warning_kinds[kind] = self.warning_kinds.get(kind, 0) + 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def thirds(values: list[float]) -> tuple[float, float]:
    """Mean of the first third and of the last third."""
    k = max(1, len(values) // 3)
    return statistics.fmean(values[:k]), statistics.fmean(values[-k:])


async def run_soak(duration_s: float, sample_s: float, db: Path) -> dict[str, Any]:
    from bot import Settings
    from bot.runner import serve_with_background
    from bot.services import open_services
    from tests.fakediscord import CallbackType, FakeChannel, FakeDiscord
    from tests.loadkit import Outcome, answered, open_files, plan, rss_mb, serve_news_feed

    counter = LogCounter()
    logging.getLogger().addHandler(counter)
    rng = random.Random(10)
    counts = Counts()
    samples: list[Sample] = []
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    fake = FakeDiscord(
        channels=[FakeChannel(1_100_000_000_000_000_010, "general")]
        + [FakeChannel(REVIEW_CHANNEL_ID, "review")],
        heartbeat_interval=HEARTBEAT_S,
        interaction_deadline=3.0,
        wait_timeout=30.0,
    )
    await fake.start()
    fake.patch_discord()
    services = await asyncio.to_thread(open_services, db)
    stop_bot = asyncio.Event()
    stop_load = asyncio.Event()
    try:
        async with serve_news_feed() as feed:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                discord_token="fake-bot-token",
                discord_guild_id=fake.guild_id,
                computewatch_db=db,
                discord_charts=False,
                review_channel_id=REVIEW_CHANNEL_ID,
                computewatch_api_port=api_port,
                computewatch_api_token=TOKEN,
                computewatch_feeds=feed.url,
                computewatch_feed_interval_min=(5 if duration_s < FULL_S else 15) / 60,
            )
            app = asyncio.create_task(
                serve_with_background(settings, services, stop=stop_bot, guild_ready_timeout=0.01)
            )
            await fake.wait_until_ready(60)
            await fake.wait_until(lambda: bool(fake.guild_commands.get(fake.guild_id)), 60)
            deal_ids = services.store.deal_ids()

            async def one_user() -> None:
                action = plan(rng, 1)[0]
                try:
                    record = await action(fake, rng)
                    outcome = await _finish(record)
                except Exception as exc:  # noqa: BLE001 - the harness's own trouble, counted
                    counts.harness_errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    return
                counts.interactions += 1
                if outcome.response_s is not None:
                    counts.latencies.append(outcome.response_s)
                counts.unanswered += not outcome.answered
                counts.failed += outcome.failed
                counts.deferred += outcome.callback == CallbackType.DEFERRED_CHANNEL_MESSAGE

            async def _finish(record: Any) -> Outcome:
                try:
                    await fake.wait_until(lambda: answered(record) or record in fake.expired, 10)
                except TimeoutError:
                    pass
                # Now and then the user turns the page of a long list.
                if record.replies and rng.random() < 0.5:
                    nexts = [c for c in record.replies[0].custom_ids() if "page:next" in c]
                    if nexts:
                        click = await fake.click(record, nexts[0])
                        try:
                            await click.wait_response(10)
                            counts.page_turns += 1
                        except TimeoutError:
                            counts.unanswered += 1
                        fake.forget(click)
                outcome = Outcome.of(record)
                fake.forget(record)
                return outcome

            async def users() -> None:
                running: set[asyncio.Task[None]] = set()
                while not stop_load.is_set():
                    task = asyncio.create_task(one_user())
                    running.add(task)
                    task.add_done_callback(running.discard)
                    await asyncio.sleep(rng.expovariate(INTERACTIONS_PER_S))
                await asyncio.gather(*running)

            async def appends(session: aiohttp.ClientSession) -> None:
                n = 0
                while not stop_load.is_set():
                    n += 1
                    event = {
                        "stream_id": f"deal:{rng.choice(deal_ids)}",
                        "type": "SourceAdded",
                        "payload": {"note": "soak"},
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "source_url": f"https://news.example.com/soak/{n}",
                        "idempotency_key": f"soak-{n}",
                    }
                    async with session.post(
                        f"{api}/events",
                        json=[event],
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    ) as resp:
                        await resp.read()
                        counts.appends += resp.status == 201
                        counts.append_errors += resp.status != 201
                    await asyncio.sleep(APPEND_EVERY_S)

            async def sql(session: aiohttp.ClientSession) -> None:
                while not stop_load.is_set():
                    async with session.post(f"{api}/sql", json={"query": SQL}) as resp:
                        await resp.read()
                        counts.sql += resp.status == 200
                        counts.sql_errors += resp.status != 200
                    await asyncio.sleep(SQL_EVERY_S)

            async def api_reads(session: aiohttp.ClientSession) -> None:
                while not stop_load.is_set():
                    lab = rng.choice(["anthropic", "openai", "xai"])
                    async with session.get(f"{api}/positions/{lab}") as resp:
                        await resp.read()
                        counts.api_reads += resp.status == 200
                        counts.api_errors += resp.status != 200
                    await asyncio.sleep(API_READ_EVERY_S)

            started = time.monotonic()

            async def sampler() -> None:
                while not stop_load.is_set():
                    # The fake keeps what the bot posted (review cards): drop it, and its log.
                    fake.forget_channel(REVIEW_CHANNEL_ID)
                    fake.requests.clear()
                    samples.append(
                        Sample(
                            t=round(time.monotonic() - started, 1),
                            rss_mb=round(rss_mb(), 1),
                            open_files=open_files(),
                            threads=threading.active_count(),
                            tasks=len(asyncio.all_tasks()),
                            head=services.store.head,
                        )
                    )
                    await asyncio.sleep(sample_s)

            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                load = [
                    asyncio.create_task(users()),
                    asyncio.create_task(appends(session)),
                    asyncio.create_task(sql(session)),
                    asyncio.create_task(api_reads(session)),
                    asyncio.create_task(sampler()),
                ]
                done, _ = await asyncio.wait({app}, timeout=duration_s)
                stop_load.set()
                await asyncio.gather(*load)
            elapsed = time.monotonic() - started
            late = fake.late_heartbeats(HEARTBEAT_SLACK_S)
            polls = feed.requests
            stop_bot.set()
            status = await app
    finally:
        logging.getLogger().removeHandler(counter)
        await asyncio.to_thread(services.close)
        await fake.stop()
    return {
        "elapsed_s": elapsed,
        "status": status,
        "stopped_early": bool(done),
        "counts": counts,
        "samples": samples,
        "late_heartbeats": late,
        "heartbeats": len(fake.heartbeat_log),
        "reconnects": len(fake.identifies) - 1 + len(fake.resumes),
        "feed_polls": polls,
        "warnings": counter.warnings,
        "warning_kinds": counter.warning_kinds,
        "errors": counter.errors,
    }


def bench_soak(r: Results, quick: bool) -> None:
    duration = QUICK_S if quick else FULL_S
    db = synth.RESULTS / "scratch" / "soak.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in db.parent.glob("soak.duckdb*"):
        stale.unlink()
    out = asyncio.run(run_soak(duration, 2.0 if quick else 5.0, db))
    samples: list[Sample] = out["samples"]
    counts: Counts = out["counts"]
    (synth.RESULTS / "soak_samples.json").write_text(
        json.dumps([asdict(s) for s in samples], indent=0)
    )
    rss_first, rss_last = thirds([s.rss_mb for s in samples])
    fds_first, fds_last = thirds([float(s.open_files) for s in samples])
    threads_first, threads_last = thirds([float(s.threads) for s in samples])
    tasks_first, tasks_last = thirds([float(s.tasks) for s in samples])
    ms = sorted(x * 1000 for x in counts.latencies)
    r.add("soak_duration_s", out["elapsed_s"], "s")
    r.add("soak_interactions", float(counts.interactions), "interactions")
    r.add("soak_page_turns", float(counts.page_turns), "clicks")
    r.add("soak_unanswered", float(counts.unanswered + counts.failed), "interactions")
    r.add("soak_deferred", float(counts.deferred), "interactions")
    r.add("soak_interaction_p50_ms", statistics.median(ms) if ms else 0.0, "ms")
    r.add("soak_interaction_p99_ms", ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else 0.0, "ms")
    r.add("soak_api_appends", float(counts.appends), "requests")
    r.add("soak_api_append_errors", float(counts.append_errors), "requests")
    r.add("soak_sql_queries", float(counts.sql), "requests")
    r.add("soak_sql_errors", float(counts.sql_errors), "requests")
    r.add("soak_api_reads", float(counts.api_reads), "requests")
    r.add("soak_feed_polls", float(out["feed_polls"]), "polls")
    r.add("soak_events_written", float(samples[-1].head - samples[0].head), "events")
    r.add("soak_rss_first_third_mb", rss_first, "MB")
    r.add("soak_rss_last_third_mb", rss_last, "MB")
    r.add("soak_rss_growth_mb", rss_last - rss_first, "MB")
    r.add("soak_rss_peak_mb", max(s.rss_mb for s in samples), "MB")
    r.add("soak_fds_first_third", fds_first, "fds")
    r.add("soak_fds_last_third", fds_last, "fds")
    r.add("soak_fd_growth", fds_last - fds_first, "fds")
    r.add("soak_threads_growth", threads_last - threads_first, "threads")
    r.add("soak_tasks_growth", tasks_last - tasks_first, "tasks")
    r.add("soak_heartbeats_late", float(len(out["late_heartbeats"])), "beats")
    r.add("soak_reconnects", float(out["reconnects"]), "connections")
    r.add("soak_warnings", float(out["warnings"]), "records")
    r.add("soak_errors", float(len(out["errors"])), "records")
    r.add("soak_harness_errors", float(len(counts.harness_errors)), "errors")
    for line in out["errors"][:20]:
        print(f"  soak error: {line}", file=sys.stderr)
    for kind, n in sorted(out["warning_kinds"].items(), key=lambda kv: -kv[1])[:10]:
        print(f"  soak warning x{n}: {kind}", file=sys.stderr)
    for line in counts.harness_errors[:5]:
        print(f"  soak harness error: {line}", file=sys.stderr)
    if out["stopped_early"] or out["status"] != 0:
        print(f"  soak: the bot stopped early (status {out['status']})", file=sys.stderr)
