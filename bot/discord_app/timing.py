"""Discord's clock: an interaction must get its first response within 3 s of being sent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import discord

T = TypeVar("T")

# Discord forgets an interaction that has no response 3 s after it was sent. Work for an answer
# that has not finished this long after it started is deferred ("thinking..."), then followed up.
DEFER_AFTER_S = 1.5
# Set in Interaction.extras when slow work was deferred publicly, before the answer (and
# whether it is private) was known.
DEFERRED_PUBLICLY = "computewatch.deferred_publicly"
# Threads of the bot's own pool for reads (DuckDB releases the GIL while it works); more than
# a few only make concurrent queries contend for the same cores.
READ_THREADS = 4


async def in_time(
    interaction: discord.Interaction,
    work: Awaitable[T],
    *,
    update: bool = False,
    ephemeral: bool = False,
) -> T:
    """Await `work` for an interaction's answer; if it is not done within DEFER_AFTER_S and the
    interaction has no response yet, defer it so that Discord still hears back in time: with
    "thinking..." for a command (the answer then follows up; only its caller sees the
    "thinking..." when `ephemeral`), or silently for a button (`update`: the answer then edits
    the message the button is on)."""
    task = asyncio.ensure_future(work)
    if interaction.response.is_done():
        return await task
    done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER_S)
    if not done and not interaction.response.is_done():
        try:
            if update:
                await interaction.response.defer()
            elif ephemeral:
                await interaction.response.defer(thinking=True, ephemeral=True)
            else:
                await interaction.response.defer(thinking=True)
                interaction.extras[DEFERRED_PUBLICLY] = True
        except BaseException:
            task.cancel()  # nobody will read the answer (a thread already running finishes)
            raise
    return await task
