"""Reviewing feed candidates in Discord: `computewatch run`'s bot and background (feed polling
against a real RSS server on 127.0.0.1), driven through the real discord.py client against the
fake Discord."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from bot.runner import serve_with_background
from bot.services import Services, open_services
from bot.settings import Settings
from store.log import EventStore
from tests.factories import make_candidate_proposed
from tests.fakediscord import (
    DEFAULT_GUILD_ID,
    CallbackType,
    FakeChannel,
    FakeDiscord,
    FakeRole,
    SentMessage,
)

GENERAL_ID = 1_100_000_000_000_000_010
REVIEW_ID = 1_100_000_000_000_000_012
ANALYST_ROLE_ID = 1_100_000_000_000_000_030
ANALYST = 1_100_000_000_000_000_041
OTHER_ANALYST = 1_100_000_000_000_000_042
PASSER_BY = 1_100_000_000_000_000_099
ARTICLE_URL = "https://news.example.com/2026/01/mistral-coreweave"
ARTICLE_TITLE = "Mistral rents GPUs from CoreWeave"
RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Compute news</title><link>https://news.example.com/</link>
<description>d</description>
<item><title>{ARTICLE_TITLE}</title><link>{ARTICLE_URL}</link><guid>{ARTICLE_URL}</guid>
<pubDate>Sat, 10 Jan 2026 09:00:00 +0000</pubDate>
<description>Mistral signed a $2 billion cloud contract with CoreWeave for 500 MW of capacity.
</description></item>
</channel></rss>"""


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = open_services(tmp_path / "computewatch.duckdb", seed=False)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord(
        guild_id=DEFAULT_GUILD_ID,
        channels=[FakeChannel(GENERAL_ID, "general"), FakeChannel(REVIEW_ID, "review")],
        roles=[FakeRole(ANALYST_ROLE_ID, "analyst")],
    )
    await fake.start()
    fake.patch_discord()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def feed_url() -> AsyncIterator[str]:
    """A real RSS server on 127.0.0.1: /rss has one article stating a deal, /broken fails."""

    async def rss(request: web.Request) -> web.Response:
        return web.Response(body=RSS.encode(), content_type="application/rss+xml")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/rss", rss)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def settings_for(services: Services, server: FakeDiscord, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "discord_token": "fake-bot-token",
        "discord_guild_id": server.guild_id,
        "analyst_role_id": ANALYST_ROLE_ID,
        "review_channel_id": REVIEW_ID,
        "computewatch_db": services.store.path,
        "computewatch_api_port": 0,
        "computewatch_feed_interval_min": 60,  # the poll at start only
        "discord_charts": False,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[arg-type]


@asynccontextmanager
async def running_bot(
    services: Services, server: FakeDiscord, **overrides: object
) -> AsyncIterator[None]:
    """`computewatch run` with a token: the bot, the HTTP API and feed polling, until stopped."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_with_background(
            settings_for(services, server, **overrides),
            services,
            stop=stop,
            guild_ready_timeout=0.01,
        )
    )
    try:
        await server.wait_until_ready(within=10)
        yield
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


async def posted_candidate(server: FakeDiscord) -> SentMessage:
    return await server.wait_for_message(REVIEW_ID, within=10)


def button(message: SentMessage, action: str) -> str:
    return next(c for c in message.custom_ids() if c.startswith(f"cw:review:{action}:"))


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until predicate() holds, for what the fake does not see (writes to the log)."""
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"not true within {within} s")


def types_of(store: EventStore) -> list[str]:
    return [e.type for e in store.read_all()]


async def test_a_feed_candidate_is_posted_for_review_with_three_buttons(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        await eventually(lambda: "CandidatePosted" in types_of(services.store))

    embed = message.embeds[0]
    assert embed["title"] == "Candidate: Mistral AI cloud contract with CoreWeave (signed)"
    assert embed["description"].startswith("> ")  # the evidence sentence, quoted
    assert ARTICLE_URL in str(embed["fields"])
    stream = next(e.stream_id for e in services.store.read_all() if e.type == "CandidateProposed")
    key = stream.removeprefix("candidate:")
    assert message.custom_ids() == [
        f"cw:review:accept:{key}",
        f"cw:review:edit:{key}",
        f"cw:review:reject:{key}",
    ]
    [posted] = [e for e in services.store.read_stream(stream) if e.type == "CandidatePosted"]
    assert posted.payload.message_id == str(message.id)  # type: ignore[attr-defined]


async def test_an_analysts_accept_writes_the_deal_as_the_analyst_from_the_article(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)

        await server.click(
            message, button(message, "accept"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        await server.wait_until(lambda: message.edits > 0)

    [reported] = [e for e in services.store.read_all() if e.type == "DealReported"]
    assert reported.actor == f"discord:{ANALYST}"
    assert (reported.source_url, reported.source_title) == (ARTICLE_URL, ARTICLE_TITLE)
    assert reported.payload.lab == "mistral"  # type: ignore[attr-defined]
    assert reported.payload.capacity_mw == 500  # type: ignore[attr-defined]
    [accepted] = [e for e in services.store.read_all() if e.type == "CandidateAccepted"]
    assert accepted.actor == f"discord:{ANALYST}"
    assert message.content.startswith(f"Accepted by <@{ANALYST}>")
    assert message.custom_ids() == []  # decided: no buttons left


async def test_reject_writes_no_deal_event_and_shows_who_rejected(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)

        await server.click(
            message, button(message, "reject"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        await server.wait_until(lambda: message.edits > 0)

    types = types_of(services.store)
    assert "CandidateRejected" in types
    assert "DealReported" not in types
    assert services.store.deal_ids() == []
    assert message.content.startswith(f"Rejected by <@{ANALYST}>")


async def test_a_non_analyst_can_neither_accept_nor_reject(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        await eventually(lambda: "CandidatePosted" in types_of(services.store))
        head = services.store.head

        replies = []
        for action in ("accept", "reject", "edit"):
            record = await server.click(message, button(message, action), user=PASSER_BY)
            replies.append(await record.wait_reply())

    assert all(r.ephemeral and "Only analysts" in r.content for r in replies)
    assert services.store.head == head
    assert message.edits == 0
    assert len(message.custom_ids()) == 3


async def test_a_click_after_another_analyst_decided_is_told_so_and_writes_nothing(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        stale = copy.deepcopy(message)  # what the other analyst's client still shows
        await server.click(
            message, button(message, "accept"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        await server.wait_until(lambda: message.edits > 0)
        head = services.store.head

        record = await server.click(
            stale, button(stale, "reject"), user=OTHER_ANALYST, roles=[ANALYST_ROLE_ID]
        )
        reply = await record.wait_reply()

    assert reply.ephemeral
    assert reply.content.startswith(f"Already decided: Accepted by <@{ANALYST}>")
    assert services.store.head == head
    assert stale.content.startswith(f"Accepted by <@{ANALYST}>")  # the stale view is refreshed


async def test_a_click_after_a_console_decision_is_told_so(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    from bot import review

    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        [pending] = review.pending_candidates(services.store)
        review.reject(services.store, pending.stream_id, "console", "a duplicate")

        record = await server.click(
            message, button(message, "accept"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        reply = await record.wait_reply()

    assert "Already decided: Rejected by console" in reply.content
    assert "a duplicate" in reply.content
    assert services.store.deal_ids() == []
    assert message.custom_ids() == []


async def test_the_buttons_still_work_after_the_bot_restarts(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        await eventually(lambda: "CandidatePosted" in types_of(services.store))

    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        await server.click(
            message, button(message, "accept"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        await server.wait_until(lambda: message.edits > 0)

    assert len(server.messages[REVIEW_ID]) == 1  # not posted again after the restart
    assert services.store.deal_ids() == ["mistral-coreweave-cloud-contract-2026"]
    assert message.content.startswith(f"Accepted by <@{ANALYST}>")


async def test_edit_opens_a_form_whose_corrections_are_accepted(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        click = await server.click(
            message, button(message, "edit"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        form = await click.wait_response()

        submitted = await server.submit_modal(
            click,
            {"Status": "loi", "Capacity (MW)": "0.8 GW", "Value (USD)": ""},
            user=ANALYST,
            roles=[ANALYST_ROLE_ID],
        )
        reply = await submitted.wait_reply()
        await server.wait_until(lambda: message.edits > 0)

    assert form.type == CallbackType.MODAL
    assert reply.ephemeral and reply.content.startswith("Accepted with your corrections")
    [reported] = [e for e in services.store.read_all() if e.type == "DealReported"]
    assert reported.payload.status == "loi"  # type: ignore[attr-defined]
    assert reported.payload.capacity_mw == 800  # type: ignore[attr-defined]
    assert reported.payload.value_usd is None  # type: ignore[attr-defined]
    assert reported.actor == f"discord:{ANALYST}"
    assert message.content.startswith(f"Accepted by <@{ANALYST}>")


async def test_a_bad_correction_is_explained_and_writes_nothing(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(services, server, computewatch_feeds=f"{feed_url}/rss"):
        message = await posted_candidate(server)
        await eventually(lambda: "CandidatePosted" in types_of(services.store))
        head = services.store.head
        click = await server.click(
            message, button(message, "edit"), user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        await click.wait_response()

        submitted = await server.submit_modal(
            click, {"Status": "done"}, user=ANALYST, roles=[ANALYST_ROLE_ID]
        )
        reply = await submitted.wait_reply()

    assert reply.ephemeral and "'done' is not a status" in reply.content
    assert services.store.head == head
    assert len(message.custom_ids()) == 3


async def test_review_lists_the_pending_candidates_privately_in_pages(
    services: Services, server: FakeDiscord
) -> None:
    services.store.append([make_candidate_proposed(f"c{i:02d}") for i in range(12)])
    async with running_bot(services, server, review_channel_id=None):
        record = await server.invoke_command("review")
        first = await record.wait_reply()
        page_one = first.embeds[0]["description"]
        next_id = next(c for c in first.custom_ids() if c.startswith("cw:page:next"))

        await server.click(record, next_id)
        await server.wait_until(lambda: first.edits > 0)

    page_two = first.embeds[0]["description"]
    assert first.ephemeral
    assert first.embeds[0]["title"] == "Candidates waiting for review (12)"
    assert "c00" in page_one and "c10" not in page_one
    assert "c10" in page_two and "c11" in page_two and "c00" not in page_two


async def test_a_feed_that_keeps_failing_is_announced_in_the_review_channel(
    services: Services, server: FakeDiscord, feed_url: str
) -> None:
    async with running_bot(
        services,
        server,
        computewatch_feeds=f"{feed_url}/broken",
        computewatch_feed_max_failures=1,
    ):
        notice = await server.wait_for_message(REVIEW_ID, within=10)

    assert notice.content.startswith(f"Feed {feed_url}/broken paused until")
    assert "HTTP 500" in notice.content
