"""Every command of the command layer as a slash command, generated once from its definition."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import Answer
from bot.commands.options import parse_day
from bot.commands.registry import Command, Option, parse_arguments
from bot.discord_app.timing import DEFERRED_PUBLICLY

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

MAX_CHOICES = 25  # Discord allows at most 25 fixed choices per option
Complete = Callable[[discord.Interaction, str], Awaitable[list[app_commands.Choice[str]]]]


class DateTransformer(app_commands.Transformer):
    """A YYYY-MM-DD option (or "now"), checked before any work, so a bad date is refused at once."""

    def __init__(self, option: str) -> None:
        self.option = option

    async def transform(self, interaction: discord.Interaction, value: str) -> str:
        text = str(value).strip()
        if text.lower() in ("", "now", "today"):
            # "today" is read later by the command, on the bot's clock.
            return text.lower() or "now"
        return parse_day(text, option=self.option).isoformat()


def split_labs(text: str) -> list[str]:
    """'anthropic, openai xai' -> ['anthropic', 'openai', 'xai'] (commas or spaces)."""
    return [t for t in re.split(r"[,\s]+", text) if t]


async def send_answer(
    bot: ComputewatchBot,
    interaction: discord.Interaction,
    answer: Answer,
    *,
    rerun: Callable[[int], Awaitable[Answer]] | None = None,
) -> None:
    """Reply with the answer's embeds, its chart as chart.png and, when it spans pages, a
    paginator; a chart is slow to draw, so the interaction is deferred first (unless the chart
    of this kept answer is drawn already)."""
    file = bot.drawn_chart_file(answer)
    if file is None:
        if answer.chart is not None and bot.charts and not interaction.response.is_done():
            await interaction.response.defer(thinking=True, ephemeral=answer.ephemeral)
        file = await bot.chart_file(answer)
    embeds = bot.first_page(answer, chart=file is not None)
    view = bot.paginator(interaction.user.id, answer, chart=file is not None, rerun=rerun)
    kwargs: dict[str, Any] = {"embeds": embeds, "ephemeral": answer.ephemeral}
    if file is not None:
        kwargs["file"] = file
    if view is not None:
        kwargs["view"] = view
    if interaction.response.is_done():
        if answer.ephemeral and interaction.extras.get(DEFERRED_PUBLICLY):
            # A slow read was deferred before the answer was known to be private: the public
            # "thinking..." placeholder goes, so that the private answer is not shown in it.
            await interaction.delete_original_response()
        message = await interaction.followup.send(wait=True, **kwargs)
        if view is not None:
            view.message = message
    else:
        response = await interaction.response.send_message(**kwargs)
        if view is not None and isinstance(response.resource, discord.InteractionMessage):
            view.message = response.resource


class QueriesCog(commands.Cog, name="Queries"):
    """Read-only questions: every command of bot/commands as a slash command."""

    def __init__(self, bot: ComputewatchBot) -> None:
        self.bot = bot
        self.app_commands_built: list[app_commands.Command[Any, ..., Any]] = [
            self.build(command) for command in bot.services.commands if command.slash
        ]

    async def cog_load(self) -> None:
        for command in self.app_commands_built:
            self.bot.tree.add_command(command, override=True)

    async def cog_unload(self) -> None:
        for command in self.app_commands_built:
            self.bot.tree.remove_command(command.name)

    # -- autocomplete ------------------------------------------------------------------------
    async def complete_lab(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=label[:100], value=slug)
            for label, slug in self.bot.index.match_labs(current)
        ]

    async def complete_labs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Completes the last lab of a list: 'anthropic, op' offers 'anthropic, openai'."""
        head, sep, last = current.rpartition(",")
        prefix = (head.strip() + ", ") if sep else ""
        chosen = set(split_labs(head))
        return [
            app_commands.Choice(name=(prefix + slug)[:100], value=(prefix + slug)[:100])
            for _, slug in self.bot.index.match_labs(last)
            if slug not in chosen
        ]

    async def complete_deal(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=d[:100], value=d[:100])
            for d in self.bot.index.match_deals(current)
        ]

    # -- generation --------------------------------------------------------------------------
    def _annotation(self, option: Option) -> tuple[Any, Complete | None]:
        """The parameter type Discord sees, and its autocomplete if it has one."""
        if option.kind == "lab":
            return str, self.complete_lab
        if option.kind == "labs":
            return str, self.complete_labs
        if option.kind == "deal":
            return str, self.complete_deal
        if option.kind == "date":
            return app_commands.Transform[str, DateTransformer(option.name)], None
        if option.kind == "int":
            return app_commands.Range[int, 1, 10_000], None
        return str, None

    def build(self, command: Command) -> app_commands.Command[Any, ..., Any]:
        """One slash command from a command definition: described, typed options with choices
        and autocomplete; the callback parses, runs off the loop and replies with embeds."""
        bot = self.bot

        async def callback(interaction: discord.Interaction, **values: Any) -> None:
            raw = {o.name: _raw(o, values.get(o.name)) for o in command.options}
            ctx = bot.services.context
            # Parsing is pure and quick: a bad value is refused before anything is deferred.
            parsed = parse_arguments(ctx, command, raw)
            if command.slow:
                await interaction.response.defer(thinking=True)
            answer = await bot.answer_in_time(interaction, command, parsed)
            rerun = None
            if any(o.name == "page" for o in command.options):

                async def rerun(page: int) -> Answer:
                    return await bot.run_command(command.name, {**raw, "page": str(page)})

            await send_answer(bot, interaction, answer, rerun=rerun)

        parameters = [
            inspect.Parameter(
                "interaction",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=discord.Interaction,
            )
        ]
        descriptions: dict[str, str] = {}
        choices: dict[str, list[app_commands.Choice[str]]] = {}
        completes: dict[str, Complete] = {}
        ordered = sorted(command.options, key=lambda o: not o.required)
        for option in ordered:
            annotation, complete = self._annotation(option)
            if option.kind == "choice" and len(option.choices) <= MAX_CHOICES:
                choices[option.name] = [
                    app_commands.Choice(name=c, value=c) for c in option.choices
                ]
            elif option.kind == "choice":
                completes[option.name] = _choice_completer(option.choices)
            if option.name == "command" and command.name == "help":
                names = [c.name for c in bot.services.commands][:MAX_CHOICES]
                choices[option.name] = [app_commands.Choice(name=n, value=n) for n in names]
            if complete is not None:
                completes[option.name] = complete
            descriptions[option.name] = option.description[:100]
            parameters.append(
                inspect.Parameter(
                    option.name,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                    annotation=annotation,
                    default=inspect.Parameter.empty if option.required else None,
                )
            )
        callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        callback.__name__ = callback.__qualname__ = f"{command.name}_command"
        if descriptions:
            app_commands.describe(**descriptions)(callback)
        if choices:
            app_commands.choices(**choices)(callback)  # type: ignore[arg-type]
        if completes:
            app_commands.autocomplete(**completes)(callback)  # type: ignore[arg-type]
        return app_commands.Command(
            name=command.name, description=command.description[:100], callback=callback
        )


def _raw(option: Option, value: object) -> str | list[str] | None:
    if value is None:
        return None
    if option.kind == "labs":
        return split_labs(str(value))
    if option.kind == "date" and value == "now":
        return None
    return str(value)


def _choice_completer(options: tuple[str, ...]) -> Complete:
    async def complete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        text = current.strip().lower()
        return [app_commands.Choice(name=c, value=c) for c in options if text in c][:MAX_CHOICES]

    return complete
