"""/alert add|list|remove and alerts firing, through the real discord.py client against the fake
Discord, with a controlled clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import Settings, create_bot
from bot.commands.registry import run_command_line
from bot.discord_app import timing
from bot.discord_app.client import ComputewatchBot
from bot.discord_app.cogs.jobs import JobsCog
from bot.render import render_text
from bot.services import Services, open_services
from events.payloads import AlertFired, AlertRuleAdded
from store.alert_queries import alert_events
from store.clock import ManualClock
from store.log import EventStore
from tests.e2e.conftest import CHANNEL_ID, DIGEST_CHANNEL_ID, MANAGER_ROLE_ID
from tests.e2e.discord_kit import writer_held
from tests.factories import make_deal_reported
from tests.fakediscord import DEFAULT_USER_ID, EPHEMERAL, CallbackType, FakeDiscord, running

START = datetime(2026, 3, 2, 10, tzinfo=UTC)
ANALYST = [MANAGER_ROLE_ID]  # Manage Server counts as analyst (client.is_analyst)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def services(tmp_path: Path, clock: ManualClock) -> Iterator[Services]:
    """A small log: OpenAI holds 3 GW committed."""
    db = tmp_path / "computewatch.duckdb"
    with EventStore(db, clock=clock) as store:
        store.append([make_deal_reported("oa-1", lab="openai", capacity_mw=3_000)])
    clock.advance(timedelta(hours=1))
    opened = open_services(db, seed=False, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


def make_bot(server: FakeDiscord, services: Services) -> ComputewatchBot:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token="fake-bot-token",
        discord_guild_id=server.guild_id,
        computewatch_db=services.store.path,
        discord_charts=False,
        alert_interval_s=0.1,
    )
    return create_bot(settings, services=services, guild_ready_timeout=0.01)


@pytest.fixture
async def bot(fake_discord: FakeDiscord, services: Services) -> AsyncIterator[ComputewatchBot]:
    async with running(make_bot(fake_discord, services)) as client:
        yield client


async def evaluated(bot: ComputewatchBot, rule_id: str, within: float = 10) -> None:
    """Wait until the bot's alert job has looked at the rule and no run is in flight."""
    cog = bot.get_cog("Jobs")
    assert isinstance(cog, JobsCog)
    async with asyncio.timeout(within):
        # The cog offers no event to await: poll briefly.
        while cog.evaluator is None or rule_id not in cog.evaluator.armed:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    await cog.jobs.drain(within)


def alert_writes(services: Services) -> list[str]:
    return [e.type for e in alert_events(services.store)]


async def add_alert(
    server: FakeDiscord, lab: str, metric: str, threshold: str, *, roles: list[int] = ANALYST
) -> dict:
    record = await server.invoke_command(
        "alert",
        {"lab": lab, "metric": metric, "threshold": threshold},
        subcommand="add",
        roles=roles,
        channel_id=CHANNEL_ID,
    )
    reply = await record.wait_reply()
    return {"content": reply.content, "embeds": reply.embeds, "ephemeral": reply.ephemeral}


async def test_an_alert_fires_once_in_its_channel_and_not_again_after_a_restart(
    fake_discord: FakeDiscord, services: Services, clock: ManualClock, bot: ComputewatchBot
) -> None:
    reply = await add_alert(fake_discord, "openai", "committed_gw", ">= 5")
    [added] = [e for e in alert_events(services.store) if isinstance(e.payload, AlertRuleAdded)]
    await evaluated(bot, "openai-1")
    clock.advance(timedelta(minutes=5))

    await bot.store.append([make_deal_reported("oa-2", lab="openai", capacity_mw=2_500)])
    alert = await fake_discord.wait_for_message(CHANNEL_ID, within=10)
    await evaluated(bot, "openai-1")
    await bot.close()
    clock.advance(timedelta(hours=2))
    async with running(make_bot(fake_discord, services)) as restarted:
        await evaluated(restarted, "openai-1")

    assert reply["embeds"][0]["title"] == "Alert openai-1 set"
    assert (added.actor, added.payload.channel_id) == (
        f"discord:{DEFAULT_USER_ID}",
        str(CHANNEL_ID),
    )
    assert alert.embeds[0]["title"] == "Alert: OpenAI committed_gw is 5.5 GW (≥ 5 GW)"
    assert fake_discord.messages[CHANNEL_ID] == [alert]
    assert fake_discord.messages[DIGEST_CHANNEL_ID] == []
    assert alert_writes(services).count("AlertFired") == 1


async def test_a_new_deal_over_a_gigawatt_is_posted_where_the_alert_was_set(
    fake_discord: FakeDiscord, services: Services, clock: ManualClock, bot: ComputewatchBot
) -> None:
    await add_alert(fake_discord, "any", "new_deal_gw", "1")
    clock.advance(timedelta(minutes=1))

    await bot.store.append([make_deal_reported("an-1", lab="anthropic", capacity_mw=1_500)])
    alert = await fake_discord.wait_for_message(CHANNEL_ID, within=10)

    assert alert.embeds[0]["title"] == "Alert: new deal over 1 GW: Anthropic, 1.5 GW"
    assert "https://" in alert.embeds[0]["fields"][-1]["value"]  # the report's source
    [fired] = [e.payload for e in alert_events(services.store) if isinstance(e.payload, AlertFired)]
    assert fired.crossing_key == "deal:an-1"


async def test_a_member_who_is_not_an_analyst_cannot_add_an_alert(
    fake_discord: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    reply = await add_alert(fake_discord, "openai", "committed_gw", ">= 5", roles=[])

    assert reply["ephemeral"]
    assert reply["content"].startswith("Only analysts")
    assert alert_writes(services) == []


@pytest.mark.parametrize(
    ("lab", "metric", "threshold", "says"),
    [
        ("anthropik", "contracted_gw", ">= 5", "Did you mean anthropic"),
        ("anthropic", "gigawatts", ">= 5", "metric: 'gigawatts' is not one of committed_gw"),
        ("anthropic", "contracted_gw", "lots", "threshold: 'lots' is not a threshold"),
    ],
)
async def test_bad_alert_input_is_explained_privately_and_nothing_is_written(
    fake_discord: FakeDiscord,
    services: Services,
    bot: ComputewatchBot,
    lab: str,
    metric: str,
    threshold: str,
    says: str,
) -> None:
    reply = await add_alert(fake_discord, lab, metric, threshold)

    assert reply["ephemeral"]
    assert says in reply["content"]
    assert alert_writes(services) == []


async def test_anyone_lists_alerts_and_an_analyst_removes_one(
    fake_discord: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    await add_alert(fake_discord, "openai", "committed_gw", ">= 5")

    listing = await fake_discord.invoke_command("alert", subcommand="list")
    listed = await listing.wait_reply()
    refused = await fake_discord.invoke_command("alert", {"id": "openai-1"}, subcommand="remove")
    removal = await fake_discord.invoke_command(
        "alert", {"id": "openai-1"}, subcommand="remove", roles=ANALYST
    )
    removed = await removal.wait_reply()
    console = render_text(run_command_line(services.context, services.commands, "/alert list"))

    assert listed.embeds[0]["title"] == "Alerts (1)"
    assert "openai-1" in listed.embeds[0]["description"]
    assert "3 GW" in listed.embeds[0]["description"]  # the figure as it stands now
    assert (await refused.wait_reply()).flags & EPHEMERAL
    assert removed.embeds[0]["title"] == "Alert openai-1 removed"
    assert alert_writes(services) == ["AlertRuleAdded", "AlertRuleRemoved"]
    assert console.startswith("Alerts (0)")


async def test_an_alert_added_while_the_writer_is_busy_is_acknowledged_in_time(
    fake_discord: FakeDiscord,
    services: Services,
    bot: ComputewatchBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "DEFER_AFTER_S", 0.05)

    async with writer_held(services.store):
        record = await fake_discord.invoke_command(
            "alert",
            {"lab": "openai", "metric": "committed_gw", "threshold": ">= 5"},
            subcommand="add",
            roles=ANALYST,
            channel_id=CHANNEL_ID,
        )
        assert (await record.wait_response()).type == CallbackType.DEFERRED_CHANNEL_MESSAGE
        assert alert_writes(services) == []  # acknowledged while the write still waited

    reply = await record.wait_reply()
    assert alert_writes(services) == ["AlertRuleAdded"]
    assert "openai" in reply.embeds[0]["title"].lower()
