"""What the load test (tests/e2e/test_load.py) and the soak (benchmarks/soak.py) share: a news
feed on 127.0.0.1 with new articles at every poll, the mix of things Discord users do, and what
one user saw of an interaction."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psutil
from aiohttp import web

from bot.discord_app.client import GENERIC_ERROR
from tests.fakediscord import CallbackType, FakeDiscord, InteractionRecord

# ---- a news feed --------------------------------------------------------------------------------

ARTICLES = [
    ("OpenAI", "Oracle"),
    ("Anthropic", "Google"),
    ("xAI", "Oracle"),
    ("Meta", "CoreWeave"),
    ("Anthropic", "Amazon"),
    ("OpenAI", "Microsoft"),
]
ITEMS_PER_DOCUMENT = 5
NEW_PER_REQUEST = 2


@dataclass
class NewsFeed:
    """Serves RSS; each request adds NEW_PER_REQUEST articles and shows the newest five, each
    naming a lab, a provider, dollars and MW, so that every poll has candidates to record."""

    url: str = ""
    requests: int = 0

    def document(self) -> bytes:
        self.requests += 1
        newest = self.requests * NEW_PER_REQUEST
        items = []
        for n in range(newest, max(0, newest - ITEMS_PER_DOCUMENT), -1):
            lab, provider = ARTICLES[n % len(ARTICLES)]
            link = f"https://news.example.com/load/{n}"
            text = (
                f"{lab} signed a ${n % 40 + 1} billion cloud contract with {provider} "
                f"for {100 + n % 900} MW of capacity."
            )
            items.append(
                f"<item><title>{lab} and {provider}, part {n}</title><link>{link}</link>"
                f"<guid>{link}</guid><pubDate>Sat, 10 Jan 2026 09:00:00 +0000</pubDate>"
                f"<description>{text}</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Load news</title><link>https://news.example.com/</link><description>d"
            f"</description>{''.join(items)}</channel></rss>"
        ).encode()


@asynccontextmanager
async def serve_news_feed() -> AsyncIterator[NewsFeed]:
    """Start the feed on a free port of 127.0.0.1; its URL is `feed.url`."""
    feed = NewsFeed()

    async def rss(request: web.Request) -> web.Response:
        return web.Response(body=feed.document(), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/news.rss", rss)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    feed.url = f"http://{host}:{port}/news.rss"
    try:
        yield feed
    finally:
        await runner.cleanup()


# ---- what users do ------------------------------------------------------------------------------

LABS = ["anthropic", "openai", "xai", "meta", "google", "microsoft"]
Action = Callable[[FakeDiscord, random.Random], Awaitable[InteractionRecord]]


async def position(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    return await server.invoke_command("position", {"lab": rng.choice(LABS)})


async def compare(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    return await server.invoke_command("compare", {"labs": ", ".join(rng.sample(LABS, 3))})


async def leaderboard(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    metric = rng.choice(["committed_gw", "operational_gw", "committed_usd"])
    return await server.invoke_command("leaderboard", {"metric": metric})


async def deals(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    return await server.invoke_command("deals", {"lab": rng.choice(LABS)})


async def labs(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    return await server.invoke_command("labs")


async def complete_lab(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    typed = rng.choice(LABS)[: rng.randint(1, 4)]
    return await server.begin_autocomplete("position", {"lab": typed}, focused="lab")


async def complete_labs(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    return await server.begin_autocomplete(
        "compare", {"labs": "anthropic, " + rng.choice("omgx")}, focused="labs"
    )


async def complete_deal(server: FakeDiscord, rng: random.Random) -> InteractionRecord:
    return await server.begin_autocomplete("deal", {"id": rng.choice(LABS)[:3]}, focused="id")


# Users type into autocompleted options before they send: about one command in two.
MIX: list[tuple[Action, int]] = [
    (position, 20),
    (compare, 10),
    (leaderboard, 6),
    (deals, 8),
    (labs, 4),
    (complete_lab, 25),
    (complete_labs, 15),
    (complete_deal, 12),
]


def plan(rng: random.Random, k: int) -> list[Action]:
    """k actions drawn from MIX by its weights."""
    actions, weights = zip(*MIX, strict=True)
    return rng.choices(actions, weights=weights, k=k)


# ---- what users saw -----------------------------------------------------------------------------


def answered(record: InteractionRecord) -> bool:
    """Whether the user sees the answer: autocomplete choices, or a reply (after a deferral,
    the follow-up)."""
    callback = record.callback
    if callback is None:
        return False
    return callback.type == CallbackType.AUTOCOMPLETE_RESULT or bool(record.replies)


@dataclass(frozen=True)
class Outcome:
    """What one user saw, kept after the fake forgets the interaction."""

    response_s: float | None  # interaction in -> first callback out
    callback: CallbackType | None
    answered: bool
    failed: bool  # the reply is the generic "something went wrong"

    @classmethod
    def of(cls, record: InteractionRecord) -> Outcome:
        callback = record.callback
        return cls(
            response_s=record.response_time,
            callback=None if callback is None else CallbackType(callback.type),
            answered=answered(record),
            failed=any(GENERIC_ERROR in m.content for m in record.replies),
        )


async def interact(
    server: FakeDiscord, action: Action, rng: random.Random, within: float
) -> Outcome:
    """Do one thing as a user, wait until it is answered (or refused as late), then let the
    fake forget it, so that what stays in memory is the bot's, not the fake's."""
    record = await action(server, rng)
    try:
        await server.wait_until(lambda: answered(record) or record in server.expired, within)
    except TimeoutError:
        pass  # counted as unanswered
    outcome = Outcome.of(record)
    server.forget(record)
    return outcome


# ---- the process --------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def rss_mb() -> float:
    """Resident memory of this process, in MiB."""
    return psutil.Process().memory_info().rss / 2**20


def open_files() -> int:
    """File descriptors this process holds open (files, sockets, pipes)."""
    return psutil.Process().num_fds()
