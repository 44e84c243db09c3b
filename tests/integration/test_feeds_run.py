"""`computewatch run` without a Discord token polls COMPUTEWATCH_FEEDS on its interval, and a
SIGTERM stops it cleanly with what it found written to the database."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from store.log import EventStore

ARTICLE_URL = "https://news.example.com/2026/01/mistral-coreweave"
RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Compute news</title><link>https://news.example.com/</link>
<description>d</description>
<item><title>Mistral and CoreWeave</title><link>{ARTICLE_URL}</link><guid>{ARTICLE_URL}</guid>
<description>Mistral signed a $2 billion cloud contract with CoreWeave for 500 MW of capacity.
</description></item>
</channel></rss>"""
ETAG = '"v1"'


@dataclass
class FeedServer:
    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    polled_twice: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer()

    async def rss(request: web.Request) -> web.Response:
        server.requests.append(dict(request.headers))
        if len(server.requests) >= 2:
            server.polled_twice.set()
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304)
        return web.Response(
            body=RSS.encode(), content_type="application/rss+xml", headers={"ETag": ETAG}
        )

    app = web.Application()
    app.router.add_get("/rss", rss)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/rss"
    yield server
    await runner.cleanup()


def run_env(db: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("DISCORD_", "COMPUTE"))}
    env |= {
        "COMPUTEWATCH_DB": str(db),
        "COMPUTEWATCH_SEED": "false",
        "COMPUTEWATCH_API_PORT": "0",
    }
    return env | settings


async def test_headless_run_polls_the_feeds_on_their_interval_and_stops_cleanly(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    db = tmp_path / "computewatch.duckdb"
    # 0.01 min = 0.6 s between polls, so the test sees the second (conditional) poll.
    env = run_env(db, COMPUTEWATCH_FEEDS=feed_server.url, COMPUTEWATCH_FEED_INTERVAL_MIN="0.01")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,  # no developer .env is read
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(feed_server.polled_twice.wait(), 60)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, stderr.decode()
    assert feed_server.requests[1].get("If-None-Match") == ETAG
    with EventStore(db) as store:
        proposed = [e for e in store.read_all() if e.type == "CandidateProposed"]
    assert [e.payload.article_url for e in proposed] == [ARTICLE_URL]  # type: ignore[attr-defined]
    assert "wait for review" in stderr.decode()  # the log notifier: no Discord here


async def test_a_bad_feed_url_stops_run_with_a_clear_message(tmp_path: Path) -> None:
    env = run_env(tmp_path / "computewatch.duckdb", COMPUTEWATCH_FEEDS="ftp://example.com/feed")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    _, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 2
    assert "COMPUTEWATCH_FEEDS" in stderr.decode() and "ftp://example.com/feed" in stderr.decode()
