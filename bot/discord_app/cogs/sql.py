"""/sql query: read-only SQL in Discord, through the same sandbox as `computewatch sql` and the
HTTP API, on the read-only snapshot of the log."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.sql_output import CSV_NAME, chat_reply
from store.sandbox import SqlSandboxError
from store.snapshot import SnapshotResult, SnapshotSql

if TYPE_CHECKING:
    from bot.discord_app.client import ComputewatchBot

log = logging.getLogger(__name__)

# A query that answers within this time is replied to at once; a slower one is deferred first,
# well inside Discord's 3 s window for the first response.
ANSWER_WITHIN_S = 1.5
# Queries from Discord run at most this many at a time (each holds a thread and a core).
SQL_CONCURRENCY = 2


class SqlCog(
    commands.GroupCog,
    group_name="sql",
    group_description="Read-only SQL over the event log (views: events, deals, lab_positions, ...)",
):
    """Ad-hoc read-only SQL: one query, time-limited, on a snapshot of the log."""

    def __init__(self, bot: ComputewatchBot, snapshot: SnapshotSql | None = None) -> None:
        self.bot = bot
        # Given: shared with the HTTP API (one snapshot file per database), owned by the caller.
        # Not given: this cog makes one on first use and closes it when unloaded.
        self._snapshot = snapshot
        self._owns_snapshot = snapshot is None
        self._slots = asyncio.Semaphore(SQL_CONCURRENCY)
        super().__init__()

    @property
    def snapshot(self) -> SnapshotSql:
        if self._snapshot is None:
            self._snapshot = SnapshotSql(self.bot.services.store)
        return self._snapshot

    async def cog_unload(self) -> None:
        if self._owns_snapshot and self._snapshot is not None:
            await asyncio.to_thread(self._snapshot.close)
            self._snapshot = None

    async def _run(self, query: str) -> SnapshotResult:
        async with self._slots:
            # In a worker thread: the sandbox waits out its time limit there, never on the loop.
            return await asyncio.to_thread(self.snapshot.run, query)

    @app_commands.command(name="query")
    @app_commands.describe(
        query="one read-only query: SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN"
    )
    async def sql_query(
        self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 6000]
    ) -> None:
        """Run one read-only SQL query on the log (time-limited; long results come as CSV)"""
        running = asyncio.create_task(self._run(query), name="sql-query")
        done, _ = await asyncio.wait({running}, timeout=ANSWER_WITHIN_S)
        if not done:
            await interaction.response.defer(thinking=True)
        try:
            answer = await running
        except SqlSandboxError as exc:
            await self._refuse(interaction, str(exc))
            return
        reply = chat_reply(answer.result, query=query, snapshot_seq=answer.snapshot_seq)
        kwargs: dict[str, Any] = {}
        if reply.csv is not None:
            kwargs["file"] = discord.File(io.BytesIO(reply.csv.encode()), filename=CSV_NAME)
        if interaction.response.is_done():
            await interaction.followup.send(reply.content, wait=True, **kwargs)
        else:
            await interaction.response.send_message(reply.content, **kwargs)

    async def _refuse(self, interaction: discord.Interaction, text: str) -> None:
        """The sandbox's message, privately. After a public "thinking..." placeholder the first
        follow-up would inherit its visibility, so the placeholder is deleted first."""
        text = text[:2000]
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.debug("could not delete the placeholder of interaction %s", interaction.id)
        await interaction.followup.send(text, ephemeral=True)
