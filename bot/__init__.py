"""The adapters of computewatch: CLI, console, Discord bot, HTTP API, feeds, digest."""

from __future__ import annotations

from typing import Any

from bot.settings import Settings


def create_bot(settings: Settings, **client_kwargs: Any) -> Any:
    """Build the Discord bot (a discord.ext.commands.Bot) without connecting.

    discord is imported only here, lazily, so that the rest of bot/ stays Discord-free.
    """
    from bot.discord_app.client import create_bot as _create

    return _create(settings, **client_kwargs)


__all__ = ["Settings", "create_bot"]
