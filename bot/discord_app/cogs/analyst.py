"""Analyst writes: /record (a modal), /update status|terms|online|link and /retract, each
previewed and confirmed by the analyst before anything is appended."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

import discord
from discord import app_commands
from discord.ext import commands

from bot.commands.deals import resolve_deal_id
from bot.discord_app.drafts import (
    actor_of,
    build_event,
    default_title,
    new_deal_id,
    parse_capacity_mw,
    parse_counterparties,
    parse_occurred_at,
    parse_value_usd,
    preview,
)
from bot.discord_app.embeds import render_answer
from bot.discord_app.views import CONFIRM_TIMEOUT_S, ConfirmView
from bot.errors import UserInputError
from events.envelope import NewEvent
from events.payloads import (
    CapacityCameOnline,
    DealReported,
    DealsLinked,
    DealStatusChanged,
    DealTermsRevised,
    EventRetracted,
)
from events.vocabulary import DealKind, DealStatus, LinkRelation
from store.errors import ConcurrencyError, StoreError

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

log = logging.getLogger(__name__)


async def confirm_and_write(
    bot: ComputewatchBot, interaction: discord.Interaction, title: str, events: Sequence[NewEvent]
) -> None:
    """Show the events privately with Confirm/Cancel; on Confirm append them, all or nothing."""
    actor = actor_of(interaction.user.id)

    async def write(click: discord.Interaction) -> str:
        if not bot.is_analyst(click):  # roles may change while the preview is open
            return "You are no longer an analyst: nothing was written."
        try:
            result = await bot.store.append(events)
        except ConcurrencyError as exc:
            return (
                f"Not written: {exc.stream_id} changed after this preview (it was at version "
                f"{exc.expected}, it is now at {exc.actual}). Check it with /deal and "
                "try again."
            )
        except StoreError as exc:
            return f"Not written: {exc}"
        await bot.catch_up_index()
        if result.all_duplicates:
            return "Already in the log: nothing new was written."
        lines = [
            f"`{e.type}` in `{e.stream_id}` (v{e.version}, id `{e.event_id}`)"
            for e in result.recorded
        ]
        log.info("%s appended %d events", actor, len(result.recorded))
        return "Written as " + actor + ":\n" + "\n".join(lines)

    view = ConfirmView(interaction.user.id, write, timeout=bot.view_timeout_s or CONFIRM_TIMEOUT_S)
    embeds = render_answer(preview(title, events, actor)).embeds
    if interaction.response.is_done():  # a slow read before it was deferred (privately)
        view.message = await interaction.followup.send(
            embeds=embeds, view=view, ephemeral=True, wait=True
        )
        return
    response = await interaction.response.send_message(embeds=embeds, view=view, ephemeral=True)
    if isinstance(response.resource, discord.InteractionMessage):
        view.message = response.resource


class RecordModal(discord.ui.Modal):
    """The details of a new deal: at most five text inputs (Discord's limit)."""

    def __init__(
        self, bot: ComputewatchBot, lab: str, kind: DealKind, status: DealStatus, title: str | None
    ) -> None:
        super().__init__(
            title=f"Record a {kind.value.replace('_', ' ')} of {lab}"[:45], timeout=900
        )
        self.bot, self.lab, self.kind, self.status, self.deal_title = (
            bot,
            lab,
            kind,
            status,
            title,
        )
        self.counterparties: discord.ui.TextInput[RecordModal] = discord.ui.TextInput(
            label="Counterparties",
            required=False,
            max_length=400,
            placeholder="google:provider, broadcom:chip_supplier",
            custom_id="cw:record:parties",
        )
        self.capacity: discord.ui.TextInput[RecordModal] = discord.ui.TextInput(
            label="Capacity (MW)",
            required=False,
            max_length=40,
            placeholder="1000 or 1.2 GW",
            custom_id="cw:record:capacity",
        )
        self.value: discord.ui.TextInput[RecordModal] = discord.ui.TextInput(
            label="Value (USD)",
            required=False,
            max_length=60,
            placeholder="$20 billion",
            custom_id="cw:record:value",
        )
        self.date: discord.ui.TextInput[RecordModal] = discord.ui.TextInput(
            label="Date (YYYY-MM-DD)",
            required=False,
            max_length=10,
            placeholder="blank for today",
            custom_id="cw:record:date",
        )
        self.source: discord.ui.TextInput[RecordModal] = discord.ui.TextInput(
            label="Source URL",
            required=True,
            max_length=2000,
            placeholder="https://...",
            custom_id="cw:record:source",
        )
        for item in (self.counterparties, self.capacity, self.value, self.date, self.source):
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        bot = self.bot
        bot.require_analyst(interaction)
        ctx = bot.services.context
        counterparties = parse_counterparties(self.counterparties.value, ctx.registry)
        occurred_at = parse_occurred_at(self.date.value, ctx.clock.now())
        fields: dict[str, object] = {
            "lab": self.lab,
            "kind": self.kind,
            "status": self.status,
            "counterparties": counterparties,
            "capacity_mw": parse_capacity_mw(self.capacity.value),
            "value_usd": parse_value_usd(self.value.value),
            "title": self.deal_title or "untitled",
        }
        deal_id = new_deal_id(
            self.lab, counterparties, self.kind.value, occurred_at.year, bot.index.deals
        )
        event = build_event(
            stream_id=f"deal:{deal_id}",
            payload_cls=DealReported,
            fields=fields,
            occurred_at=occurred_at,
            actor=actor_of(interaction.user.id),
            source_url=self.source.value,
            expected_version=0,
        )
        if not self.deal_title:
            assert isinstance(event.payload, DealReported)
            title = default_title(ctx.registry, event.payload)[:200]
            event = event.model_copy(
                update={"payload": event.payload.model_copy(update={"title": title})}
            )
        await confirm_and_write(bot, interaction, f"Record deal:{deal_id}?", [event])

    async def on_error(  # type: ignore[override]  # discord.py's Modal drops View's item
        self, interaction: discord.Interaction, error: Exception
    ) -> None:
        from bot.discord_app.client import report_error

        await report_error(interaction, error)


class AnalystCog(commands.Cog, name="Analyst"):
    """Recording and retracting deals (analyst role or Manage Server)."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot

    @app_commands.command(name="record")
    @app_commands.describe(
        lab="the lab that gets the compute",
        kind="what kind of deal",
        status="how far the deal has got",
        title="a headline (optional)",
    )
    async def analyst_record(
        self,
        interaction: discord.Interaction,
        lab: str,
        kind: DealKind,
        status: DealStatus,
        title: str | None = None,
    ) -> None:
        """Record a new deal (analysts): the details go in a form, then you confirm"""
        self.bot.require_analyst(interaction)
        slug = self.bot.services.context.registry.find(lab)
        if slug is None:
            raise UserInputError(f"lab: no lab or company is called {lab!r}; /labs lists them.")
        await interaction.response.send_modal(RecordModal(self.bot, slug.slug, kind, status, title))

    @analyst_record.autocomplete("lab")
    async def analyst_record_lab(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=label[:100], value=slug)
            for label, slug in self.bot.index.match_labs(current)
        ]

    @app_commands.command(name="retract")
    @app_commands.describe(
        event_id="the id of the wrong event (see /deal)", reason="why it is wrong (kept in the log)"
    )
    async def analyst_retract(
        self,
        interaction: discord.Interaction,
        event_id: str,
        reason: app_commands.Range[str, 3, 2000],
    ) -> None:
        """Retract a wrong event (analysts): it stays in the log but no longer counts"""
        self.bot.require_analyst(interaction)
        try:
            target_id = UUID(event_id.strip())
        except ValueError:
            raise UserInputError(f"{event_id!r} is not an event id (a UUID, see /deal)") from None
        store = self.bot.services.store
        target = await self.bot.read_in_time(
            interaction, store.get_event, target_id, ephemeral=True
        )
        if target is None:
            raise UserInputError(f"No event has the id {target_id}.")
        version = await self.bot.read_in_time(
            interaction, store.stream_version, target.stream_id, ephemeral=True
        )
        event = build_event(
            stream_id=target.stream_id,
            payload_cls=EventRetracted,
            fields={"event_id": target_id, "reason": reason},
            occurred_at=self.bot.services.context.clock.now(),
            actor=actor_of(interaction.user.id),
            source_url=None,
            expected_version=version,
        )
        await confirm_and_write(
            self.bot, interaction, f"Retract {target.type} of {target.stream_id}?", [event]
        )


class UpdateCog(
    commands.GroupCog,
    group_name="update",
    group_description="Change a deal (analysts): status, terms, capacity online, link",
):
    """Updates to an existing deal, each previewed and confirmed."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot
        super().__init__()

    async def _draft(
        self,
        interaction: discord.Interaction,
        deal: str,
        payload_cls: type,
        fields: dict[str, object],
        date: str | None,
        source_url: str,
        what: str,
    ) -> None:
        self.bot.require_analyst(interaction)
        ctx = self.bot.services.context
        deal_id = await self.bot.read_in_time(
            interaction, resolve_deal_id, ctx, deal, ephemeral=True
        )
        stream = f"deal:{deal_id}"
        version = await self.bot.read_in_time(
            interaction, self.bot.services.store.stream_version, stream, ephemeral=True
        )
        event = build_event(
            stream_id=stream,
            payload_cls=payload_cls,
            fields=fields,
            occurred_at=parse_occurred_at(date, ctx.clock.now()),
            actor=actor_of(interaction.user.id),
            source_url=source_url,
            expected_version=version,
        )
        await confirm_and_write(self.bot, interaction, f"{what} of {stream}?", [event])

    async def _complete_deal(self, current: str) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=d[:100], value=d[:100])
            for d in self.bot.index.match_deals(current)
        ]

    @app_commands.command(name="status")
    @app_commands.describe(
        deal="the deal id",
        status="its new status",
        source_url="where this is reported",
        date="YYYY-MM-DD (blank: today)",
        reason="why, in a few words",
    )
    async def update_status(
        self,
        interaction: discord.Interaction,
        deal: str,
        status: DealStatus,
        source_url: str,
        date: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Change a deal's status (analysts)"""
        await self._draft(
            interaction,
            deal,
            DealStatusChanged,
            {"status": status, "reason": reason},
            date,
            source_url,
            "Change the status",
        )

    @app_commands.command(name="terms")
    @app_commands.describe(
        deal="the deal id",
        source_url="where this is reported",
        capacity="new capacity, MW or GW",
        value="new value, e.g. $20 billion",
        date="YYYY-MM-DD (blank: today)",
    )
    async def update_terms(
        self,
        interaction: discord.Interaction,
        deal: str,
        source_url: str,
        capacity: str | None = None,
        value: str | None = None,
        date: str | None = None,
    ) -> None:
        """Revise a deal's size or value (analysts)"""
        self.bot.require_analyst(interaction)
        if not (capacity or "").strip() and not (value or "").strip():
            raise UserInputError("Give a new capacity, a new value or both; nothing was written.")
        await self._draft(
            interaction,
            deal,
            DealTermsRevised,
            {"capacity_mw": parse_capacity_mw(capacity), "value_usd": parse_value_usd(value)},
            date,
            source_url,
            "Revise the terms",
        )

    @app_commands.command(name="online")
    @app_commands.describe(
        deal="the deal id",
        source_url="where this is reported",
        mw="newly live capacity, MW or GW",
        date="YYYY-MM-DD (blank: today)",
    )
    async def update_online(
        self,
        interaction: discord.Interaction,
        deal: str,
        source_url: str,
        mw: str | None = None,
        date: str | None = None,
    ) -> None:
        """Record capacity of a deal coming online (analysts)"""
        await self._draft(
            interaction,
            deal,
            CapacityCameOnline,
            {"mw": parse_capacity_mw(mw)},
            date,
            source_url,
            "Record capacity online",
        )

    @app_commands.command(name="link")
    @app_commands.describe(
        deal="the deal id",
        relation="how it relates to the other deal",
        other_deal="the other deal id",
        source_url="where this is reported",
        date="YYYY-MM-DD (blank: today)",
    )
    async def update_link(
        self,
        interaction: discord.Interaction,
        deal: str,
        relation: LinkRelation,
        other_deal: str,
        source_url: str,
        date: str | None = None,
    ) -> None:
        """Link two deals so that shared capacity counts once (analysts)"""
        self.bot.require_analyst(interaction)  # before any lookup: others learn nothing
        ctx = self.bot.services.context
        other = await self.bot.read_in_time(
            interaction, resolve_deal_id, ctx, other_deal, ephemeral=True
        )
        if other == await self.bot.read_in_time(
            interaction, resolve_deal_id, ctx, deal, ephemeral=True
        ):
            raise UserInputError(
                f"deal:{other} cannot be linked to itself; name the other deal in other_deal. "
                "Nothing was written."
            )
        await self._draft(
            interaction,
            deal,
            DealsLinked,
            {"relation": relation, "other_deal": other},
            date,
            source_url,
            "Link",
        )

    @update_status.autocomplete("deal")
    @update_terms.autocomplete("deal")
    @update_online.autocomplete("deal")
    @update_link.autocomplete("deal")
    @update_link.autocomplete("other_deal")
    async def update_deal_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._complete_deal(current)
