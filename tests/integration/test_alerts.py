"""Alerts against a real DuckDB log with a controlled clock: once per crossing, across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.alerts import AlertEvaluator, add_rule, load_rules, parse_rule, remove_rule
from bot.answers import Answer
from bot.errors import UserInputError
from events.parties import default_registry
from events.payloads import AlertFired
from store.clock import ManualClock
from store.facade import AsyncEventStore
from store.log import EventStore
from store.queries import Queries
from tests.factories import make_deal_reported, make_retraction, make_terms_revision

CHANNEL = "1100000000000000010"
OTHER_CHANNEL = "1100000000000000012"
ANALYST = "discord:1100000000000000003"
REGISTRY = default_registry()


class RecordingDiscord:
    """Stands in for Discord (the outside world): keeps what was posted, returns message ids."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Answer]] = []

    async def post(self, channel_id: str, answer: Answer, png: bytes | None) -> str:
        await asyncio.sleep(0)
        self.posts.append((channel_id, answer))
        return str(1_200_000_000_000_000_000 + len(self.posts))


@pytest.fixture
async def writer(store: EventStore) -> AsyncIterator[AsyncEventStore]:
    store.append([make_deal_reported("oa-1", lab="openai", capacity_mw=3_000)])
    async with AsyncEventStore(store) as facade:
        yield facade


def evaluator(
    writer: AsyncEventStore, clock: ManualClock, discord: RecordingDiscord
) -> AlertEvaluator:
    return AlertEvaluator(writer, discord, REGISTRY, clock, cooldown=timedelta(hours=1))


async def add(
    writer: AsyncEventStore, clock: ManualClock, text: str, channel: str = CHANNEL
) -> str:
    lab, metric, threshold = text.split(" ", 2)
    answer = await add_rule(
        writer,
        REGISTRY,
        parse_rule(REGISTRY, lab, metric, threshold),
        channel_id=channel,
        actor=ANALYST,
        now=clock.now(),
    )
    clock.advance(timedelta(minutes=1))  # what follows is recorded after the rule
    return str(answer.data["rule_id"])


def fired(store: EventStore, rule_id: str) -> list[AlertFired]:
    return [
        e.payload
        for e in store.read_stream(f"alert:{rule_id}")
        if isinstance(e.payload, AlertFired)
    ]


async def test_an_alert_fires_once_when_a_recorded_event_crosses_its_threshold(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    rule = await add(writer, clock, "openai committed_gw >= 5")
    alerts = evaluator(writer, clock, discord)
    assert await alerts.run_once() == []  # 3 GW: below

    clock.advance(timedelta(minutes=5))
    await writer.append([make_deal_reported("oa-2", lab="openai", capacity_mw=2_500)])
    first = await alerts.run_once()
    second = await alerts.run_once()

    assert [o.status for o in first] == ["posted"] and second == []
    [(channel, answer)] = discord.posts
    assert channel == CHANNEL
    assert answer.title == "Alert: OpenAI committed_gw is 5.5 GW (≥ 5 GW)"
    assert answer.sources  # the figure links to the reports behind it
    assert [f.value for f in fired(writer.store, rule)] == [5.5]


async def test_a_restart_after_an_alert_fired_does_not_post_it_again(
    db_path: Path, writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    await add(writer, clock, "openai committed_gw >= 5")
    clock.advance(timedelta(minutes=5))
    await writer.append([make_deal_reported("oa-2", lab="openai", capacity_mw=2_500)])
    await evaluator(writer, clock, discord).run_once()
    await writer.aclose()
    writer.store.close()
    clock.advance(timedelta(hours=3))  # well past the cooldown

    with EventStore(db_path, clock=clock) as reopened:
        async with AsyncEventStore(reopened) as restarted:
            outcomes = await evaluator(restarted, clock, discord).run_once()

    assert outcomes == []
    assert len(discord.posts) == 1


async def test_an_alert_re_arms_only_after_the_figure_goes_back_below_and_the_cooldown(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    rule = await add(writer, clock, "openai committed_gw >= 5")
    alerts = evaluator(writer, clock, discord)
    report = make_deal_reported("oa-2", lab="openai", capacity_mw=2_500)
    await writer.append([report])
    await alerts.run_once()

    await writer.append([make_retraction(report)])  # back to 3 GW: re-armed
    await alerts.run_once()
    await writer.append([make_deal_reported("oa-3", lab="openai", capacity_mw=2_500)])
    within_cooldown = await alerts.run_once()
    clock.advance(timedelta(minutes=61))
    after_cooldown = await alerts.run_once()
    again = await alerts.run_once()

    assert within_cooldown == [] and again == []
    assert [o.status for o in after_cooldown] == ["posted"]
    assert [f.crossing_key for f in fired(writer.store, rule)] == ["crossing-1", "crossing-2"]


async def test_a_rule_that_holds_when_it_is_added_waits_for_the_next_crossing(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    await add(writer, clock, "openai committed_gw >= 2")  # 3 GW already

    outcomes = await evaluator(writer, clock, discord).run_once()

    assert outcomes == [] and discord.posts == []


async def test_a_falling_figure_fires_a_less_or_equal_rule(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    await add(writer, clock, "openai committed_gw <= 2")
    alerts = evaluator(writer, clock, discord)
    await alerts.run_once()

    await writer.append([make_terms_revision("oa-1", capacity_mw=1_500)])
    outcomes = await alerts.run_once()

    assert [o.status for o in outcomes] == ["posted"]
    assert "1.5 GW" in discord.posts[0][1].title


async def test_a_new_deal_rule_fires_once_per_new_deal_over_the_size_in_its_channel(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    rule = await add(writer, clock, "any new_deal_gw 1", channel=OTHER_CHANNEL)
    alerts = evaluator(writer, clock, discord)
    clock.advance(timedelta(minutes=1))

    await writer.append(
        [
            make_deal_reported("an-big", lab="anthropic", capacity_mw=1_200),
            make_deal_reported("an-small", lab="anthropic", capacity_mw=300),
        ]
    )
    first = await alerts.run_once()
    second = await alerts.run_once()

    assert [o.status for o in first] == ["posted"] and second == []
    [(channel, answer)] = discord.posts
    assert channel == OTHER_CHANNEL
    assert answer.title == "Alert: new deal over 1 GW: Anthropic, 1.2 GW"
    assert [f.crossing_key for f in fired(writer.store, rule)] == ["deal:an-big"]
    assert "oa-1" not in answer.data["deals"]  # recorded before the rule


async def test_a_removed_rule_fires_no_more(writer: AsyncEventStore, clock: ManualClock) -> None:
    discord = RecordingDiscord()
    rule = await add(writer, clock, "openai committed_gw >= 5")
    await remove_rule(writer, REGISTRY, rule, actor=ANALYST, now=clock.now())

    await writer.append([make_deal_reported("oa-2", lab="openai", capacity_mw=2_500)])
    outcomes = await evaluator(writer, clock, discord).run_once()

    assert outcomes == [] and discord.posts == []
    assert load_rules(Queries(writer.store))[rule].removed


async def test_two_evaluators_racing_post_a_crossing_once(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    discord = RecordingDiscord()
    await add(writer, clock, "openai committed_gw >= 5")
    first, second = evaluator(writer, clock, discord), evaluator(writer, clock, discord)
    await asyncio.gather(first.run_once(), second.run_once())

    await writer.append([make_deal_reported("oa-2", lab="openai", capacity_mw=2_500)])
    outcomes = await asyncio.gather(first.run_once(), second.run_once())

    assert sorted(o.status for run in outcomes for o in run) == ["fired_elsewhere", "posted"]
    assert len(discord.posts) == 1


async def test_the_same_rule_twice_in_a_channel_is_refused_and_nothing_is_written(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    rule = await add(writer, clock, "openai committed_gw >= 5")
    head = writer.store.head

    with pytest.raises(UserInputError, match=f"already \\({rule}\\); nothing was written"):
        await add(writer, clock, "openai committed_gw 5 GW")

    assert writer.store.head == head


async def test_removing_an_unknown_rule_names_the_rules_in_force(
    writer: AsyncEventStore, clock: ManualClock
) -> None:
    rule = await add(writer, clock, "openai committed_gw >= 5")

    with pytest.raises(UserInputError, match=f"No alert in force has the id 'openai-9'.*{rule}"):
        await remove_rule(writer, REGISTRY, "openai-9", actor=ANALYST, now=clock.now())
