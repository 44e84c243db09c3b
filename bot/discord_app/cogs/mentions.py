"""Plain-English questions: a message that mentions the bot is answered by the matching command."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.discord_app.embeds import render_answer
from bot.errors import UserInputError
from bot.nl import match_question, strip_mentions

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

log = logging.getLogger(__name__)

HELP_HINT = (
    'I did not catch that. Ask e.g. "who has more contracted GW, anthropic or openai?", '
    '"how is xai doing?", "who leads?", "explain anthropic contracted", '
    "or use the slash commands (/help)."
)
SYNC_GLOBAL = "sync global"


class MentionsCog(commands.Cog, name="Mentions"):
    """Answers questions asked by mentioning the bot (no message-content intent needed)."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or me not in message.mentions:
            return
        text = strip_mentions(message.content)
        if text.lower() == SYNC_GLOBAL:
            await self.sync_global(message)
            return
        intent = match_question(text, self.bot.services.context.registry)
        try:
            if intent is None:
                answer = await self.bot.run_command("help", {})
                content = HELP_HINT
            else:
                answer = await self.bot.run_command(intent.command, intent.raw)
                content = f"`{intent.line()}`"
        except UserInputError as exc:
            await message.reply(str(exc)[:2000], mention_author=False)
            return
        file = await self.bot.chart_file(answer)
        view = self.bot.paginator(message.author.id, answer, chart=file is not None, rerun=None)
        kwargs: dict[str, Any] = {
            "content": content,
            "embeds": render_answer(answer, chart=file is not None).embeds,
        }
        if file is not None:
            kwargs["file"] = file
        if view is not None:
            kwargs["view"] = view
        sent = await message.reply(mention_author=False, **kwargs)
        if view is not None:
            view.message = sent

    async def sync_global(self, message: discord.Message) -> None:
        """The owner's explicit action to publish the commands globally."""
        if not await self.bot.is_owner(message.author):
            await message.reply(
                "Only the bot's owner can sync commands globally.", mention_author=False
            )
            return
        synced = await self.bot.sync_commands(global_=True)
        await message.reply(
            f"Synced {len(synced)} commands globally (they may take up to an hour to appear).",
            mention_author=False,
        )
