"""/alert add|list|remove: alerts posted in the channel where they were set (bot/alerts.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.alerts import (
    ALERT_METRICS,
    active_rules,
    add_rule,
    alerts_answer,
    describe,
    load_rules,
    parse_lab_or_any,
    parse_rule,
    remove_rule,
)
from bot.discord_app.cogs.queries import send_answer
from bot.discord_app.drafts import actor_of
from bot.discord_app.timing import in_time

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

METRIC_CHOICES = [app_commands.Choice(name=m, value=m) for m in ALERT_METRICS]


class AlertsCog(
    commands.GroupCog,
    group_name="alert",
    group_description="Alerts in this channel when a lab's figure crosses a threshold",
):
    """Alert rules: analysts add and remove them, anyone lists them."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="add")
    @app_commands.describe(
        lab="the lab, or any (with new_deal_gw: any new deal)",
        metric="the figure to watch; new_deal_gw: the size of each new deal",
        threshold="e.g. >= 5 (GW), <= 2, over 500 MW, >= $20B",
    )
    @app_commands.choices(metric=METRIC_CHOICES)
    async def alert_add(
        self, interaction: discord.Interaction, lab: str, metric: str, threshold: str
    ) -> None:
        """Post in this channel when a lab's figure crosses a threshold (analysts)"""
        self.bot.require_analyst(interaction)
        ctx = self.bot.services.context
        spec = parse_rule(ctx.registry, lab, metric, threshold)
        # A write waits for the writer (and the answer reads the figure): deferred if slow.
        answer = await in_time(
            interaction,
            add_rule(
                self.bot.store,
                ctx.registry,
                spec,
                channel_id=str(interaction.channel_id),
                actor=actor_of(interaction.user.id),
                now=ctx.clock.now(),
            ),
        )
        await send_answer(self.bot, interaction, answer)

    @app_commands.command(name="list")
    @app_commands.describe(lab="only the alerts of this lab")
    async def alert_list(self, interaction: discord.Interaction, lab: str | None = None) -> None:
        """The alerts in force, with the figure each watches now"""
        ctx = self.bot.services.context
        slug = parse_lab_or_any(ctx.registry, lab) if lab else None
        answer = await self.bot.read_in_time(
            interaction, alerts_answer, ctx.queries, ctx.registry, lab=slug
        )
        await send_answer(self.bot, interaction, answer)

    @app_commands.command(name="remove")
    @app_commands.describe(id="the alert's id (see /alert list)")
    async def alert_remove(self, interaction: discord.Interaction, id: str) -> None:
        """Stop an alert (analysts)"""
        self.bot.require_analyst(interaction)
        ctx = self.bot.services.context
        answer = await in_time(
            interaction,
            remove_rule(
                self.bot.store,
                ctx.registry,
                id,
                actor=actor_of(interaction.user.id),
                now=ctx.clock.now(),
            ),
        )
        await send_answer(self.bot, interaction, answer)

    @alert_add.autocomplete("lab")
    @alert_list.autocomplete("lab")
    async def alert_lab_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        labs = [
            app_commands.Choice(name=label[:100], value=slug)
            for label, slug in self.bot.index.match_labs(current)
        ]
        if "any".startswith(current.strip().lower()):
            labs.insert(0, app_commands.Choice(name="any lab (new_deal_gw)", value="any"))
        return labs[:25]

    @alert_remove.autocomplete("id")
    async def alert_id_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        ctx = self.bot.services.context
        rules = active_rules(await self.bot.read(load_rules, ctx.queries))
        text = current.strip().lower()
        return [
            app_commands.Choice(
                name=f"{r.rule_id}: {describe(r.spec, ctx.registry)}"[:100], value=r.rule_id
            )
            for r in rules
            if text in r.rule_id
        ][:25]
