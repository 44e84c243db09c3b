# ruff: noqa: F811 - the fixtures imported from discord_kit are used as arguments
"""/update terms | online | link through the real discord.py client and the fake Discord: the
preview, the analyst's confirmation, the events written (with the analyst as actor), concurrent
changes reported rather than overwritten, and views that time out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.discord_app import timing
from bot.discord_app.client import ComputewatchBot
from bot.services import Services
from events.envelope import NewEvent
from events.payloads import CapacityCameOnline, DealsLinked, DealTermsRevised, SourceAdded
from tests.e2e.discord_kit import (  # noqa: F401 - fixtures
    ANALYST_ROLE_ID,
    OTHER_USER_ID,
    SOURCE,
    bot,
    buttons,
    custom_id,
    make_bot,
    seeded_db,
    server,
    services,
)
from tests.fakediscord import (
    DEFAULT_USER_ID,
    EPHEMERAL,
    CallbackType,
    FakeDiscord,
    InteractionRecord,
    running,
)

ANALYST = [ANALYST_ROLE_ID]
ACTOR = f"discord:{DEFAULT_USER_ID}"


def two_deals_of_one_lab(services: Services) -> tuple[str, str]:
    by_lab: dict[str, list[str]] = {}
    for deal_id in services.store.deal_ids():
        lab = services.store.lab_of(deal_id)
        if lab is not None:
            by_lab.setdefault(lab, []).append(deal_id)
    pairs = sorted(ids for ids in by_lab.values() if len(ids) >= 2)
    return pairs[0][0], pairs[0][1]


async def update(
    server: FakeDiscord,
    subcommand: str,
    options: dict[str, object],
    *,
    user: int = DEFAULT_USER_ID,
    roles: list[int] = ANALYST,
) -> InteractionRecord:
    return await server.invoke_command(
        "update", options, subcommand=subcommand, user=user, roles=roles
    )


async def confirm(
    server: FakeDiscord, command: InteractionRecord, *, user: int = DEFAULT_USER_ID
) -> str:
    """Click Confirm on the command's preview; the outcome the preview is replaced with."""
    preview = await command.wait_reply()
    edits = preview.edits
    click = await server.click(
        command, custom_id(preview, "cw:confirm:yes"), user=user, roles=ANALYST
    )
    # The preview is replaced at once, or (a slow write, deferred in time) once it is done.
    assert (await click.wait_response()).type in (
        CallbackType.UPDATE_MESSAGE,
        CallbackType.DEFERRED_UPDATE_MESSAGE,
    )
    await server.wait_until(lambda: preview.edits > edits)
    return command.replies[0].content


# ---- the three updates ---------------------------------------------------------------------


async def test_analyst_revises_a_deals_terms_after_confirming_the_preview(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    version = services.store.stream_version(f"deal:{deal}")
    command = await update(
        server,
        "terms",
        {"deal": deal, "source_url": SOURCE, "capacity": "2.5 GW", "value": "$30 billion"},
    )
    preview = await command.wait_reply()
    assert services.store.stream_version(f"deal:{deal}") == version  # nothing before Confirm

    outcome = await confirm(server, command)

    last = services.store.read_stream(f"deal:{deal}")[-1]
    assert preview.ephemeral
    assert "DealTermsRevised" in preview.embeds[0]["description"]
    assert isinstance(last.payload, DealTermsRevised)
    assert (last.payload.capacity_mw, last.payload.value_usd) == (2500, 30e9)
    assert (last.actor, last.source_url, last.version) == (ACTOR, SOURCE, version + 1)
    assert outcome.startswith(f"Written as {ACTOR}")


async def test_analyst_records_capacity_coming_online_on_a_given_day(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    command = await update(
        server,
        "online",
        {"deal": deal, "source_url": SOURCE, "mw": "300 MW", "date": "2025-06-01"},
    )

    await confirm(server, command)

    last = services.store.read_stream(f"deal:{deal}")[-1]
    assert isinstance(last.payload, CapacityCameOnline)
    assert last.payload.mw == 300
    assert last.occurred_at == datetime(2025, 6, 1, tzinfo=UTC)
    assert last.actor == ACTOR


async def test_analyst_links_two_deals(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal, other = two_deals_of_one_lab(services)
    command = await update(
        server,
        "link",
        {"deal": deal, "relation": "part_of", "other_deal": other, "source_url": SOURCE},
    )

    await confirm(server, command)

    last = services.store.read_stream(f"deal:{deal}")[-1]
    assert isinstance(last.payload, DealsLinked)
    assert (last.payload.relation.value, last.payload.other_deal) == ("part_of", other)
    assert last.actor == ACTOR


async def test_a_deal_can_be_named_by_its_stream_id(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal, other = two_deals_of_one_lab(services)
    command = await update(
        server,
        "link",
        {
            "deal": f"deal:{deal}",
            "relation": "overlaps",
            "other_deal": f"deal:{other}",
            "source_url": SOURCE,
        },
    )

    await confirm(server, command)

    last = services.store.read_stream(f"deal:{deal}")[-1]
    assert isinstance(last.payload, DealsLinked)
    assert last.payload.other_deal == other


# ---- refusals: a clear private message, nothing written ------------------------------------


async def test_linking_a_deal_to_itself_is_refused_before_the_preview(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    head = services.store.head

    command = await update(
        server,
        "link",
        {"deal": deal, "relation": "supersedes", "other_deal": deal, "source_url": SOURCE},
    )

    reply = await command.wait_reply()
    assert reply.ephemeral
    assert "cannot be linked to itself" in reply.content
    assert reply.custom_ids() == []  # no preview to confirm
    assert services.store.head == head


async def test_terms_that_change_nothing_are_refused_before_the_preview(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    head = services.store.head

    command = await update(server, "terms", {"deal": deal, "source_url": SOURCE})

    reply = await command.wait_reply()
    assert reply.ephemeral
    assert reply.content.startswith("Give a new capacity, a new value or both")
    assert reply.custom_ids() == []
    assert services.store.head == head


async def test_an_unknown_deal_is_refused_with_a_pointer_to_deals(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    head = services.store.head

    command = await update(
        server, "online", {"deal": "no-such-deal-anywhere", "source_url": SOURCE, "mw": "10"}
    )

    reply = await command.wait_reply()
    assert reply.ephemeral
    assert "No deal is called 'no-such-deal-anywhere'" in reply.content
    assert services.store.head == head


async def test_a_non_analyst_is_refused_a_link_before_anything_is_looked_up(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    head = services.store.head

    command = await update(
        server,
        "link",
        {"deal": deal, "relation": "part_of", "other_deal": "nonexistent", "source_url": SOURCE},
        roles=[],
    )

    reply = await command.wait_reply()
    assert reply.ephemeral
    assert "Only analysts" in reply.content
    assert services.store.head == head


# ---- concurrent changes --------------------------------------------------------------------


async def test_two_analysts_revising_one_deal_the_second_is_told_not_overwritten(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal = services.store.deal_ids()[0]
    first = await update(server, "terms", {"deal": deal, "source_url": SOURCE, "capacity": "1000"})
    second = await update(
        server,
        "terms",
        {"deal": deal, "source_url": SOURCE, "capacity": "2000"},
        user=OTHER_USER_ID,
    )
    await first.wait_reply()
    await second.wait_reply()

    await confirm(server, first)
    outcome = await confirm(server, second, user=OTHER_USER_ID)

    last = services.store.read_stream(f"deal:{deal}")[-1]
    assert "changed after this preview" in outcome
    assert isinstance(last.payload, DealTermsRevised)
    assert last.payload.capacity_mw == 1000  # the first analyst's revision stands
    assert last.actor == ACTOR


async def test_a_link_previewed_before_another_change_to_the_deal_is_not_written(
    server: FakeDiscord, services: Services, bot: ComputewatchBot
) -> None:
    deal, other = two_deals_of_one_lab(services)
    command = await update(
        server,
        "link",
        {"deal": deal, "relation": "part_of", "other_deal": other, "source_url": SOURCE},
    )
    await command.wait_reply()
    meanwhile = NewEvent(
        stream_id=f"deal:{deal}",
        payload=SourceAdded(note="another report"),
        occurred_at=services.context.clock.now(),
        actor="cli",
        source_url=SOURCE,
    )
    await bot.store.append([meanwhile])
    version = services.store.stream_version(f"deal:{deal}")

    outcome = await confirm(server, command)

    assert "changed after this preview" in outcome
    assert services.store.stream_version(f"deal:{deal}") == version
    assert services.store.read_stream(f"deal:{deal}")[-1].type == "SourceAdded"


# ---- views that time out -------------------------------------------------------------------


async def test_a_confirmation_that_times_out_is_disabled_and_writes_nothing(
    server: FakeDiscord, services: Services
) -> None:
    deal = services.store.deal_ids()[0]
    head = services.store.head
    async with running(make_bot(server, services, view_timeout_s=0.3)):
        command = await update(server, "online", {"deal": deal, "source_url": SOURCE, "mw": "5"})
        preview = await command.wait_reply()
        yes = custom_id(preview, "cw:confirm:yes")

        await server.wait_until(lambda: preview.edits > 0, within=3)
        late = await server.click(command, yes, roles=ANALYST)
        await asyncio.sleep(0.3)  # time for an answer that must not come

    assert "Timed out: nothing was written" in preview.content
    assert buttons(preview) and all(b.get("disabled") for b in buttons(preview))
    assert late.callbacks == []  # the stopped view no longer answers a (stale) click
    assert services.store.head == head


async def test_a_paginator_that_times_out_disables_its_buttons_and_keeps_its_page(
    server: FakeDiscord, services: Services
) -> None:
    head = services.store.head
    async with running(make_bot(server, services, view_timeout_s=0.3)):
        command = await server.invoke_command("deals")
        first = await command.wait_reply()
        page = first.embeds[0]["footer"]["text"]
        assert any(not b.get("disabled") for b in buttons(first))

        await server.wait_until(lambda: first.edits > 0, within=3)

    assert buttons(first) and all(b.get("disabled") for b in buttons(first))
    assert first.embeds[0]["footer"]["text"] == page
    assert services.store.head == head


# ---- Discord's 3 seconds, when the store is slow ---------------------------------------------


async def test_a_slow_lookup_defers_the_preview_privately_and_the_update_still_writes(
    server: FakeDiscord, services: Services, bot: ComputewatchBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timing, "DEFER_AFTER_S", 0.0)  # every read is "slow"
    deal = services.store.deal_ids()[0]
    version = services.store.stream_version(f"deal:{deal}")

    command = await update(
        server, "terms", {"deal": deal, "source_url": SOURCE, "capacity": "2.5 GW"}
    )
    preview = await command.wait_reply()
    deferred = command.callbacks[0]
    outcome = await confirm(server, command)

    assert deferred.type == CallbackType.DEFERRED_CHANNEL_MESSAGE
    assert deferred.data.get("flags", 0) & EPHEMERAL  # "thinking..." seen by the analyst only
    assert preview.ephemeral and "DealTermsRevised" in preview.embeds[0]["description"]
    assert outcome.startswith(f"Written as {ACTOR}")
    assert services.store.stream_version(f"deal:{deal}") == version + 1
