# ruff: noqa: F811 - the fixtures imported from discord_kit are used as arguments
"""The computewatch bot, built by create_bot, driven through the real discord.py client against
the fake Discord, on a copy of a DuckDB seeded with the bundled ledger."""

from __future__ import annotations

import asyncio
import re
import signal
import threading

import pytest

from bot.commands.positions import format_metric, metric_value
from bot.commands.registry import run_command
from bot.discord_app import timing
from bot.discord_app.client import ComputewatchBot
from bot.formats import gw, usd
from bot.runner import serve
from bot.services import Services
from events.envelope import NewEvent
from events.payloads import DealReported, DealStatusChanged
from store.queries import Position
from tests.e2e.discord_kit import (  # noqa: F401 - fixtures
    ANALYST_ROLE_ID,
    CHANNEL_ID,
    MANAGER_ROLE_ID,
    OTHER_USER_ID,
    SOURCE,
    bot,
    custom_id,
    fill_record_form,
    make_bot,
    record_through_the_form,
    seeded_db,
    server,
    services,
    settings_for,
    writer_held,
)
from tests.fakediscord import (
    DEFAULT_USER_ID,
    EPHEMERAL,
    CallbackType,
    FakeDiscord,
    InteractionRecord,
    running,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def table_line(embed: dict, first_cell: str) -> list[str]:
    """The cells of the code-block table line that starts with first_cell."""
    for line in embed["description"].splitlines():
        if line.startswith(first_cell + " "):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no table line {first_cell!r} in {embed['description']!r}")


def expected(services: Services, command: str, raw: dict) -> dict:
    return run_command(services.context, services.commands, command, raw).data


# ---- startup -----------------------------------------------------------------------------------


async def test_create_bot_connects_nothing_until_started(
    server: FakeDiscord, services: Services
) -> None:
    client = make_bot(server, services)

    await asyncio.sleep(0)

    assert server.requests == []
    assert server.connections == 0
    assert not client.intents.message_content
    await client.close()


async def test_login_syncs_every_command_to_the_guild_only(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    synced = {c["name"]: c for c in server.guild_commands[server.guild_id]}

    assert set(synced) >= {c.name for c in services.commands} | {"record", "update", "retract"}
    assert server.global_commands == []
    position = {o["name"]: o for o in synced["position"]["options"]}
    assert position["lab"]["required"] and position["lab"]["autocomplete"]
    assert all(o["description"] and o["description"] != "…" for o in position.values())
    metric = {o["name"]: o for o in synced["leaderboard"]["options"]}["metric"]
    assert [c["value"] for c in metric["choices"]][:2] == ["committed_gw", "operational_gw"]


# ---- read commands -----------------------------------------------------------------------------


async def test_position_embed_shows_the_figures_of_the_json_answer(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    data = expected(services, "position", {"lab": "anthropic"})

    record = await server.invoke_command("position", {"lab": "anthropic"})

    reply = await record.wait_reply()
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    capacity = data["capacity_mw"]
    assert fields["Operational"] == gw(capacity["operational"])
    assert fields["Contracted"] == gw(capacity["contracted"])
    assert fields["Pipeline"] == gw(capacity["pipeline"])
    assert fields["Committed $"] == usd(data["committed_usd"])
    assert fields["Deals"] == str(data["deals"])
    assert reply.embeds[0]["title"].startswith("Anthropic")
    assert not reply.ephemeral


async def test_compare_embed_shows_the_figures_of_the_json_answer(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    data = expected(services, "compare", {"labs": ["anthropic", "openai"]})

    record = await server.invoke_command("compare", {"labs": "anthropic, openai"})

    embed = (await record.wait_reply()).embeds[0]
    for metric in ("committed_gw", "contracted_gw", "committed_usd", "deals"):
        want = [
            format_metric(metric, metric_value(Position.model_validate(lab), metric))
            for lab in data["labs"]
        ]
        assert table_line(embed, metric)[1:3] == want


async def test_bad_date_is_refused_privately(server: FakeDiscord, bot: ComputewatchBot) -> None:
    record = await server.invoke_command("position", {"lab": "anthropic", "as_of": "2025-13-40"})

    reply = await record.wait_reply()
    assert reply.ephemeral
    assert "YYYY-MM-DD" in reply.content


async def test_unknown_lab_is_refused_privately_with_suggestions(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    record = await server.invoke_command("position", {"lab": "anthropik"})

    reply = await record.wait_reply()
    assert reply.ephemeral
    assert "anthropic" in reply.content


async def test_autocomplete_offers_labs_lists_of_labs_and_deals(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    labs = await server.autocomplete("position", {"lab": "anthr"}, focused="lab")
    pairs = await server.autocomplete("compare", {"labs": "anthropic, open"}, focused="labs")
    deals = await server.autocomplete("deal", {"id": "colossus"}, focused="id")

    assert labs[0]["value"] == "anthropic"
    assert [c["value"] for c in pairs] == ["anthropic, openai"]
    assert deals and all("colossus" in c["value"] for c in deals)


async def test_answer_with_chart_is_deferred_then_followed_up_with_the_png(
    server: FakeDiscord, services: Services
) -> None:
    async with running(make_bot(server, services, settings={"discord_charts": True})):
        record = await server.invoke_command("position", {"lab": "anthropic"})

        [followup] = await record.wait_followups(1, within=15)

    assert record.callbacks[0].type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert followup.attachments[0].filename == "chart.png"
    assert followup.attachments[0].data.startswith(PNG_MAGIC)
    assert followup.embeds[0]["image"]["url"] == "attachment://chart.png"


async def test_pages_turn_for_the_caller_only(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    record = await server.invoke_command("deals")
    first = await record.wait_reply()
    next_id = custom_id(first, "cw:page:next")

    turned = await server.click(record, next_id)
    refused = await server.click(record, next_id, user=OTHER_USER_ID)

    assert (await turned.wait_response()).type == CallbackType.UPDATE_MESSAGE
    assert "page 2 of" in first.embeds[0]["footer"]["text"]
    assert (await refused.wait_reply()).ephemeral
    assert "Only" in refused.replies[0].content
    assert "page 2 of" in first.embeds[0]["footer"]["text"]


# ---- analyst writes ----------------------------------------------------------------------------


async def open_record_form(server: FakeDiscord, roles: list[int]) -> InteractionRecord:
    return await server.invoke_command(
        "record", {"lab": "anthropic", "kind": "cloud_contract", "status": "signed"}, roles=roles
    )


async def test_analyst_records_a_deal_through_the_form_and_confirmation(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    before = set(services.store.deal_ids())
    submit, preview = await record_through_the_form(
        server, "google:provider, broadcom:chip_supplier"
    )

    [new] = set(services.store.deal_ids()) - before
    [event] = services.store.read_stream(f"deal:{new}")
    assert preview.ephemeral
    assert event.actor == f"discord:{DEFAULT_USER_ID}"
    assert event.payload.capacity_mw == 1500 and event.payload.value_usd == 20e9
    assert [c.party for c in event.payload.counterparties] == ["google", "broadcom"]
    assert event.source_url == SOURCE
    assert "Written as" in submit.replies[0].content
    assert new in bot.index.deal_ids  # autocomplete sees it at once
    offered = await server.autocomplete("deal", {"id": new}, focused="id")
    assert offered[0]["value"] == new


async def test_a_slow_write_after_confirm_is_acknowledged_in_time_then_shown(
    server: FakeDiscord, services: Services, bot: ComputewatchBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = services.store.head
    submit, preview = await fill_record_form(server, "google:provider")
    monkeypatch.setattr(timing, "DEFER_AFTER_S", 0.05)

    async with writer_held(services.store):
        confirm = await server.click(
            submit, custom_id(preview, "cw:confirm:yes"), roles=[ANALYST_ROLE_ID]
        )
        assert (await confirm.wait_response()).type == CallbackType.DEFERRED_UPDATE_MESSAGE
        assert services.store.head == before  # acknowledged while the write still waited

    await server.wait_until(lambda: "Written as" in (submit.replies[0].content or ""))
    assert services.store.head == before + 1


async def test_a_deal_written_by_others_is_offered_after_the_next_analyst_write(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    # As the HTTP API beside the bot writes: the bot's index does not see it at once.
    await bot.store.append(
        [
            NewEvent(
                stream_id="deal:written-by-the-api",
                payload=DealReported(
                    lab="amazon", kind="owned_build", status="signed", title="An API write"
                ),
                occurred_at=services.context.clock.now(),
                actor="api",
                source_url=SOURCE,
            )
        ]
    )

    await record_through_the_form(server, "google:provider")

    deals = await server.autocomplete("deal", {"id": "written-by-the"}, focused="id")
    labs = await server.autocomplete("position", {"lab": "amazon"}, focused="lab")
    assert [c["value"] for c in deals] == ["written-by-the-api"]
    assert "amazon" in [c["value"] for c in labs]


async def test_non_analyst_is_refused_and_nothing_is_written(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    head = services.store.head

    command = await open_record_form(server, [])

    reply = await command.wait_reply()
    assert command.callbacks[0].type == CallbackType.CHANNEL_MESSAGE
    assert reply.flags & EPHEMERAL
    assert "analyst" in reply.content.lower()
    assert services.store.head == head


async def test_manage_server_permission_is_enough_to_record(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    command = await open_record_form(server, [MANAGER_ROLE_ID])

    assert (await command.wait_response()).type == CallbackType.MODAL


async def test_only_the_analyst_who_asked_can_confirm(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    command = await server.invoke_command(
        "update",
        {"deal": deal, "status": "cancelled", "source_url": SOURCE},
        subcommand="status",
        roles=[ANALYST_ROLE_ID],
    )
    preview = await command.wait_reply()
    version = services.store.stream_version(f"deal:{deal}")

    other = await server.click(
        command, custom_id(preview, "cw:confirm:yes"), user=OTHER_USER_ID, roles=[ANALYST_ROLE_ID]
    )

    assert (await other.wait_reply()).ephemeral
    assert services.store.stream_version(f"deal:{deal}") == version


async def test_change_made_after_the_preview_is_reported_not_overwritten(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    command = await server.invoke_command(
        "update",
        {"deal": deal, "status": "cancelled", "source_url": SOURCE},
        subcommand="status",
        roles=[ANALYST_ROLE_ID],
    )
    preview = await command.wait_reply()
    await bot.store.append(
        [
            NewEvent(
                stream_id=f"deal:{deal}",
                payload=DealStatusChanged(status="shelved"),
                occurred_at=services.context.clock.now(),
                actor="cli",
                source_url=SOURCE,
            )
        ]
    )
    version = services.store.stream_version(f"deal:{deal}")

    confirm = await server.click(
        command, custom_id(preview, "cw:confirm:yes"), roles=[ANALYST_ROLE_ID]
    )
    await confirm.wait_response()

    assert "changed after this preview" in command.replies[0].content
    assert services.store.stream_version(f"deal:{deal}") == version


async def test_analyst_retracts_an_event_with_a_reason(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    target = services.store.read_stream(f"deal:{deal}")[-1]
    command = await server.invoke_command(
        "retract",
        {"event_id": str(target.event_id), "reason": "misread the article"},
        roles=[ANALYST_ROLE_ID],
    )
    preview = await command.wait_reply()

    confirm = await server.click(
        command, custom_id(preview, "cw:confirm:yes"), roles=[ANALYST_ROLE_ID]
    )
    await confirm.wait_response()

    last = services.store.read_stream(f"deal:{deal}")[-1]
    assert last.type == "EventRetracted"
    assert last.payload.event_id == target.event_id
    assert last.actor == f"discord:{DEFAULT_USER_ID}"


# ---- the connection ----------------------------------------------------------------------------


async def test_rate_limited_reply_is_retried(server: FakeDiscord, bot: ComputewatchBot) -> None:
    server.rate_limit("POST", "/interactions/{interaction_id}/{token}/callback", times=1)

    record = await server.invoke_command("labs")

    assert (await record.wait_reply()).embeds[0]["title"].startswith("Labs")
    assert len(server.rate_limited) == 1


async def test_commands_work_after_a_reconnect(server: FakeDiscord, bot: ComputewatchBot) -> None:
    assert await server.reconnect() == "RESUME"

    record = await server.invoke_command("position", {"lab": "openai"})

    assert (await record.wait_reply()).embeds[0]["title"].startswith("OpenAI")
    assert len(server.identifies) == 1


# ---- mentions ----------------------------------------------------------------------------------


async def test_mention_naming_two_labs_is_answered_by_compare(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    await server.send_user_message(CHANNEL_ID, "who has more contracted GW, anthropic or openai?")

    posted = await server.wait_for_message(CHANNEL_ID)
    assert posted.content == "`/compare labs:anthropic,openai`"
    assert posted.embeds[0]["title"] == "Compare Anthropic vs OpenAI"


async def test_mention_that_fits_no_rule_gets_help(
    server: FakeDiscord, bot: ComputewatchBot
) -> None:
    await server.send_user_message(CHANNEL_ID, "what's the weather like?")

    posted = await server.wait_for_message(CHANNEL_ID)
    assert "I did not catch that" in posted.content
    assert posted.embeds[0]["title"] == "computewatch commands"


# ---- the runner --------------------------------------------------------------------------------


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers need the main thread",
)
async def test_sigterm_stops_the_bot_cleanly(server: FakeDiscord, services: Services) -> None:
    task = asyncio.create_task(
        serve(settings_for(server, services), services, guild_ready_timeout=0.01)
    )
    await server.wait_until_ready()
    await server.wait_until(lambda: bool(server.guild_commands))

    signal.raise_signal(signal.SIGTERM)
    status = await asyncio.wait_for(task, 5)

    assert status == 0
    assert services.store.head > 0  # still open: the runner's caller closes it afterwards


async def test_slow_command_is_deferred_then_answered_by_a_follow_up(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    [slow] = [c.name for c in services.commands if c.slow][:1] or pytest.skip("no slow command")

    record = await server.invoke_command(slow)

    [followup] = await record.wait_followups(1, within=10)
    assert record.callbacks[0].type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert followup.embeds[0]["title"]
