"""The Discord client: create_bot(settings) builds it without connecting; setup_hook wires it."""

from __future__ import annotations

import asyncio
import functools
import gc
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer_cache import AnswerCache, Key, answer_key
from bot.answers import Answer
from bot.commands.registry import Command, parse_arguments
from bot.discord_app.embeds import page_count, render_answer
from bot.discord_app.index import SearchIndex
from bot.discord_app.timing import READ_THREADS, in_time
from bot.discord_app.views import PAGE_TIMEOUT_S, PaginatorView
from bot.errors import PermissionDeniedError, UserInputError
from bot.services import Services, open_services
from bot.settings import Settings
from store.facade import AsyncEventStore
from store.snapshot import SnapshotSql

log = logging.getLogger(__name__)
T = TypeVar("T")

GENERIC_ERROR = "Sorry, something went wrong on our side; it has been logged."
CHART_NAME = "chart.png"


def _user_error(error: BaseException) -> UserInputError | None:
    """The UserInputError behind an app command error (wrapped by invoke or a transformer)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserInputError):
            return current
        seen.add(id(current))
        current = getattr(current, "original", None) or current.__cause__
    return None


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """One short private message, as the response or, once responded, as a follow-up; after a
    public "thinking..." deferral the placeholder itself says it (Discord would turn the first
    follow-up into that public message anyway)."""
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
    elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        await interaction.edit_original_response(content=text, embeds=[], attachments=[], view=None)
    else:
        await interaction.followup.send(text, ephemeral=True)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The one place errors of commands, views and modals end: a user's mistake is explained
    privately; anything else is logged once and gets a short generic reply."""
    user_error = _user_error(error)
    if user_error is not None:
        text = str(user_error)
    elif isinstance(error, app_commands.CheckFailure):
        text = str(error) or "You cannot use this command here."
    else:
        name = interaction.command.qualified_name if interaction.command else "?"
        log.exception("unexpected error in /%s", name, exc_info=error)
        text = GENERIC_ERROR
    try:
        await send_ephemeral(interaction, text[:2000])
    except discord.HTTPException:
        log.warning("could not report an error to the user of interaction %s", interaction.id)


class ComputewatchTree(app_commands.CommandTree["ComputewatchBot"]):
    """The command tree with the bot's single global error handler."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)


class ComputewatchBot(commands.Bot):
    """computewatch in Discord: slash commands from the command layer, analyst writes, mentions."""

    def __init__(
        self,
        settings: Settings,
        *,
        services: Services | None = None,
        charts: bool | None = None,
        view_timeout_s: float | None = None,
        sql: SnapshotSql | None = None,
        writer: AsyncEventStore | None = None,
        **client_kwargs: Any,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = False  # privileged; mentions still carry their content
        client_kwargs.setdefault("intents", intents)
        client_kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            tree_cls=ComputewatchTree,
            **client_kwargs,
        )
        self.settings = settings
        self.charts = settings.discord_charts if charts is None else charts
        self._services = services
        self._owns_services = services is None
        # The single writer; given (shared with the HTTP API) or started by setup_hook.
        self._store: AsyncEventStore | None = writer
        self._owns_writer = writer is None
        self.index = SearchIndex()
        # How long buttons stay live; None: each view's own default (minutes). Tests pass less.
        self.view_timeout_s = view_timeout_s
        # The SQL snapshot /sql reads (the HTTP API's, when it runs beside the bot; else its own).
        self.sql_snapshot = sql
        # Answers of read-only commands while the log is unchanged; shared reads meanwhile.
        self.answers = AnswerCache(settings.answer_cache_size)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("the bot is not set up yet (setup_hook opens the services)")
        return self._services

    @property
    def store(self) -> AsyncEventStore:
        if self._store is None:
            raise RuntimeError("the bot is not set up yet (setup_hook starts the writer)")
        return self._store

    async def setup_hook(self) -> None:
        from bot.discord_app.cogs.alerts import AlertsCog
        from bot.discord_app.cogs.analyst import AnalystCog, UpdateCog
        from bot.discord_app.cogs.jobs import JobsCog
        from bot.discord_app.cogs.mentions import MentionsCog
        from bot.discord_app.cogs.queries import QueriesCog
        from bot.discord_app.cogs.review import ReviewCog
        from bot.discord_app.cogs.sql import SqlCog

        if self._services is None:
            self._services = await asyncio.to_thread(
                open_services, self.settings.computewatch_db, seed=self.settings.computewatch_seed
            )
        if self._store is None:
            self._store = AsyncEventStore(self.services.store)
        self._store.start()  # a no-op for a writer that is running already
        await self.refresh_index()
        await self.add_cog(QueriesCog(self))
        await self.add_cog(AnalystCog(self))
        await self.add_cog(UpdateCog(self))
        await self.add_cog(MentionsCog(self))
        await self.add_cog(ReviewCog(self))  # re-registers the review buttons of any message
        await self.add_cog(SqlCog(self, self.sql_snapshot))
        await self.add_cog(AlertsCog(self))
        await self.add_cog(JobsCog(self))  # the digest and alert jobs start once ready
        await self.sync_commands(global_=self.settings.discord_sync_global)
        freeze_startup_objects()

    async def sync_commands(self, *, global_: bool = False) -> list[app_commands.AppCommand]:
        """Sync to the configured guild; globally only when asked (an owner's explicit action)."""
        synced: list[app_commands.AppCommand] = []
        guild_id = self.settings.discord_guild_id
        if guild_id is not None:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild_id)
        if global_:
            synced = await self.tree.sync()
            log.info("synced %d commands globally", len(synced))
        elif guild_id is None:
            log.warning(
                "DISCORD_GUILD_ID is not set and global sync was not asked for: "
                "commands were not synced"
            )
        return synced

    async def close(self) -> None:
        """Disconnect, let the pending appends finish, then close the database if we opened it."""
        await super().close()
        if "_read_pool" in self.__dict__:  # queued reads are dropped, running ones finish
            pool = self.__dict__.pop("_read_pool")
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        if self._store is not None:
            if self._owns_writer:  # a writer given to the bot is stopped by its owner
                await self._store.aclose()
            self._store = None
        if self._owns_services and self._services is not None:
            await asyncio.to_thread(self._services.close)
            self._services = None

    async def on_message(self, message: discord.Message) -> None:
        # No prefix commands: mentions are questions, answered by MentionsCog.
        return None

    # -- helpers the cogs share ----------------------------------------------------------------
    async def read(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a read of the store in a worker thread: DuckDB never runs on the event loop.
        The bot's reads have a pool of their own, so that a crowd of Discord users does not
        queue the feeds' and the API's threads behind their questions."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, functools.partial(fn, *args, **kwargs))

    @functools.cached_property
    def _read_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(READ_THREADS, thread_name_prefix="computewatch-discord-read")

    async def read_in_time(
        self,
        interaction: discord.Interaction,
        fn: Callable[..., T],
        *args: object,
        ephemeral: bool = False,
        **kwargs: object,
    ) -> T:
        """A read for an interaction's answer: if it is slow (a busy store, a queue of reads),
        the interaction is deferred in time and the answer follows (see timing.in_time); a
        private answer (`ephemeral`) is deferred privately."""
        return await in_time(interaction, self.read(fn, *args, **kwargs), ephemeral=ephemeral)

    async def refresh_index(self) -> None:
        """Read autocomplete's index from the store (on start-up: ~0.13 s at 1M events)."""
        await asyncio.to_thread(
            self.index.refresh, self.services.store, self.services.context.registry
        )

    async def catch_up_index(self) -> None:
        """Have autocomplete offer what was written since it last looked (after the bot's own
        write: its new deals and labs, and what the HTTP API beside it wrote meanwhile): only
        those events are read, not every deal id (0.13 s at 1M events)."""
        await asyncio.to_thread(
            self.index.catch_up, self.services.store, self.services.context.registry
        )

    async def run_command(self, name: str, raw: dict[str, str | list[str] | None]) -> Answer:
        """Parse the options (on the loop: pure) and answer the command (see answer)."""
        command = self.services.commands.get(name)
        return await self.answer(command, parse_arguments(self.services.context, command, raw))

    def answer_key(self, command: Command, values: dict[str, Any]) -> Key | None:
        """The cache key of a command's answer on the log as it is now (None: never kept)."""
        return answer_key(command.name, values, self.services.store.head)

    async def answer(
        self, command: Command, values: dict[str, Any], key: Key | None = None
    ) -> Answer:
        """A command's answer to parsed options: kept from an earlier identical question on the
        same log head, or awaited from the same read already running, or read in a worker
        thread. The key is taken before the read, so an answer is never older than its key."""
        key = key or self.answer_key(command, values)
        ctx = self.services.context
        return await self.answers.get_or_read(
            key, functools.partial(self.read, command.handler, ctx, **values)
        )

    async def answer_in_time(
        self, interaction: discord.Interaction, command: Command, values: dict[str, Any]
    ) -> Answer:
        """answer() for an interaction: a kept answer goes out at once; a read is deferred if it
        is slow (see read_in_time)."""
        key = self.answer_key(command, values)
        kept = self.answers.get(key)
        if kept is not None:
            return kept
        return await in_time(interaction, self.answer(command, values, key))

    async def chart_file(self, answer: Answer) -> discord.File | None:
        """The answer's chart as a PNG attachment, or None (no chart, charts off, or it failed);
        drawn once for a kept answer."""
        if answer.chart is None or not self.charts:
            return None
        try:
            png = await self.answers.derived_async(answer, "chart", self._draw_chart)
        except UserInputError:
            return None
        except Exception:  # noqa: BLE001 - a chart is decoration: the answer goes out without it
            log.exception("chart failed for %s", answer.chart)
            return None
        return discord.File(io.BytesIO(png), filename=CHART_NAME)

    def drawn_chart_file(self, answer: Answer) -> discord.File | None:
        """The chart of a kept answer if it is drawn already (no need to defer for it)."""
        png = self.answers.derived_ready(answer, "chart") if self.charts else None
        return None if png is None else discord.File(io.BytesIO(png), filename=CHART_NAME)

    async def _draw_chart(self, answer: Answer) -> bytes:
        from bot.chart_service import chart_png  # matplotlib loads only when a chart is drawn

        assert answer.chart is not None
        return await self.read(chart_png, self.services.context, answer.chart)

    def first_page(self, answer: Answer, *, chart: bool) -> list[discord.Embed]:
        """The embeds of the answer's first page; rendered once for a kept answer (as plain
        data, so that each message gets embeds of its own)."""
        data = self.answers.derived(
            answer,
            ("first_page", chart),
            lambda a: [e.to_dict() for e in render_answer(a, chart=chart).embeds],
        )
        return [discord.Embed.from_dict(d) for d in data]

    def paginator(
        self, owner_id: int, answer: Answer, *, chart: bool, rerun: Callable[[int], Any] | None
    ) -> PaginatorView | None:
        """A Previous/Next view when the answer spans pages (the command's own or the table's)."""
        if answer.pages > 1 and rerun is not None:

            async def fetch_command_page(i: int) -> list[discord.Embed]:
                return render_answer(await rerun(i + 1)).embeds

            return PaginatorView(
                owner_id,
                answer.pages,
                fetch_command_page,
                start=answer.page - 1,
                timeout=self.view_timeout_s or PAGE_TIMEOUT_S,
            )
        pages = self.answers.derived(answer, "pages", page_count)
        if pages <= 1:
            return None

        async def fetch_table_page(i: int) -> list[discord.Embed]:
            return render_answer(answer, page=i + 1, chart=chart).embeds

        return PaginatorView(
            owner_id, pages, fetch_table_page, timeout=self.view_timeout_s or PAGE_TIMEOUT_S
        )

    def is_analyst(self, interaction: discord.Interaction) -> bool:
        """Members with the analyst role, or with Manage Server, may write to the log."""
        if interaction.permissions.manage_guild or interaction.permissions.administrator:
            return True
        role_id = self.settings.analyst_role_id
        user = interaction.user
        if role_id is None or not isinstance(user, discord.Member):
            return False
        return any(role.id == role_id for role in user.roles)

    def require_analyst(self, interaction: discord.Interaction) -> None:
        if not self.is_analyst(interaction):
            raise PermissionDeniedError(
                "Only analysts (the analyst role or Manage Server) can change the log; "
                "nothing was written."
            )


def freeze_startup_objects() -> None:
    """Leave what the start made (modules, commands, models, caches: ~100k objects) out of the
    garbage collector's full passes: each one over them stopped the event loop for 60-130 ms,
    which a crowd of interactions waited through. Garbage is collected first, so that only live
    objects are kept out (a later start freezes only what was made since)."""
    gc.collect()
    gc.freeze()


def create_bot(
    settings: Settings, *, services: Services | None = None, **client_kwargs: Any
) -> ComputewatchBot:
    """Build the bot without connecting. Without `services`, setup_hook opens the database of
    the settings and close() closes it; with them, the caller owns them."""
    return ComputewatchBot(settings, services=services, **client_kwargs)
