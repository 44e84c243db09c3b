# ruff: noqa: F811 - the fixtures imported from discord_kit are used as arguments
"""The bot's answer cache, through the real discord.py client and the fake Discord: a repeated
question is answered without reading the store again, a change to the log is in the very next
answer, questions asked at once share one read, and nothing personal is shared between users."""

from __future__ import annotations

import asyncio

from bot.commands.registry import run_command
from bot.discord_app.client import ComputewatchBot
from bot.services import Services
from events.envelope import NewEvent
from events.payloads import DealStatusChanged
from tests.e2e.discord_kit import (  # noqa: F401 - fixtures
    ANALYST_ROLE_ID,
    OTHER_USER_ID,
    SOURCE,
    bot,
    custom_id,
    make_bot,
    record_through_the_form,
    seeded_db,
    server,
    services,
)
from tests.fakediscord import CallbackType, FakeDiscord, SentMessage, running


def fields(reply: SentMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}


def fresh_fields(services: Services, lab: str) -> dict[str, str]:
    """The figures of /position as the store gives them now (no cache involved)."""
    answer = run_command(services.context, services.commands, "position", {"lab": lab})
    return {f.name: f.value for f in answer.facts}


async def ask_position(server: FakeDiscord, lab: str, **kw: object) -> SentMessage:
    record = await server.invoke_command("position", {"lab": lab}, **kw)  # type: ignore[arg-type]
    return await record.wait_reply()


async def test_the_same_question_twice_reads_the_store_once(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    first = await ask_position(server, "anthropic")
    second = await ask_position(server, "anthropic", user=OTHER_USER_ID)

    assert second.embeds == first.embeds
    assert bot.answers.stats.reads == 1
    assert bot.answers.stats.hits == 1


async def test_a_deal_recorded_in_discord_is_in_the_next_position(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    before = fields(await ask_position(server, "anthropic"))
    await record_through_the_form(server, "google:provider")

    after = fields(await ask_position(server, "anthropic"))

    assert int(after["Deals"]) == int(before["Deals"]) + 1
    assert fresh_fields(services, "anthropic").items() <= after.items()
    assert bot.answers.stats.reads == 2


async def test_an_event_appended_by_the_writer_is_in_the_next_position(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    counted = [
        d
        for d in services.context.queries.counting(["anthropic"])
        if d.status in ("signed", "operational")
    ]
    before = fields(await ask_position(server, "anthropic"))
    await bot.store.append(
        [
            NewEvent(
                stream_id=f"deal:{counted[0].deal_id}",
                payload=DealStatusChanged(status="shelved"),
                occurred_at=services.context.clock.now(),
                actor="cli",
                source_url=SOURCE,
            )
        ]
    )

    after = fields(await ask_position(server, "anthropic"))

    assert after != before
    assert int(after["Deals"]) == int(before["Deals"]) - 1
    assert fresh_fields(services, "anthropic").items() <= after.items()


async def test_fifty_questions_at_once_over_five_labs_read_each_lab_once(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    labs = ["anthropic", "openai", "xai", "meta", "google"]

    records = await asyncio.gather(
        *(server.invoke_command("position", {"lab": labs[i % 5]}) for i in range(50))
    )
    replies = await asyncio.gather(*(r.wait_reply() for r in records))

    assert bot.answers.stats.reads == 5
    assert bot.answers.stats.shared + bot.answers.stats.hits == 45
    for i, reply in enumerate(replies):
        assert fresh_fields(services, labs[i % 5]).items() <= fields(reply).items()
        assert reply.embeds[0]["title"] == replies[i % 5].embeds[0]["title"]


async def test_a_private_list_is_read_for_each_caller(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    mine = await (await server.invoke_command("review")).wait_reply()
    theirs = await (await server.invoke_command("review", user=OTHER_USER_ID)).wait_reply()

    assert mine.ephemeral and theirs.ephemeral
    assert bot.answers.stats.reads == 2
    assert bot.answers.stats.hits == 0


async def test_a_kept_list_still_gets_page_buttons_only_its_caller_can_use(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    mine = await server.invoke_command("deals")
    my_page = await mine.wait_reply()
    theirs = await server.invoke_command("deals", user=OTHER_USER_ID)
    their_page = await theirs.wait_reply()
    assert bot.answers.stats.hits == 1  # the second /deals was the kept answer
    next_id = custom_id(their_page, "cw:page:next")

    refused = await server.click(theirs, next_id)  # the first user, on the other's message
    turned = await server.click(theirs, next_id, user=OTHER_USER_ID)

    assert (await refused.wait_reply()).ephemeral
    assert (await turned.wait_response()).type == CallbackType.UPDATE_MESSAGE
    assert "page 2 of" in their_page.embeds[0]["footer"]["text"]
    assert "page 1 of" in my_page.embeds[0]["footer"]["text"]


async def test_with_the_cache_off_every_question_reads_the_store(
    server: FakeDiscord, services: Services
) -> None:
    async with running(make_bot(server, services, settings={"answer_cache_size": 0})) as client:
        first = await ask_position(server, "anthropic")
        second = await ask_position(server, "anthropic")

    assert second.embeds == first.embeds
    assert client.answers.stats.reads == 2
    assert len(client.answers) == 0


async def test_a_kept_answer_s_chart_is_drawn_once_and_then_sent_at_once(
    server: FakeDiscord, services: Services
) -> None:
    async with running(make_bot(server, services, charts=True)) as client:
        first = await server.invoke_command("position", {"lab": "anthropic"})
        [drawn] = await first.wait_followups(1, within=15)
        again = await server.invoke_command("position", {"lab": "anthropic"}, user=OTHER_USER_ID)
        reply = await again.wait_reply()

    assert first.callbacks[0].type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert again.callbacks[0].type == CallbackType.CHANNEL_MESSAGE  # no "thinking..." needed
    assert reply.attachments[0].data == drawn.attachments[0].data
    assert reply.embeds[0]["image"]["url"] == "attachment://chart.png"
    assert client.answers.stats.made == 1
