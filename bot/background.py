"""The services that run beside any front end: the single writer and the HTTP API."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from bot.api import api_deps, serve_api
from bot.services import Services
from bot.settings import Settings
from store.facade import AsyncEventStore

log = logging.getLogger(__name__)


@dataclass
class Background:
    """Start with `await start()`; `await stop()` lets pending writes finish, then stops."""

    services: Services
    settings: Settings
    writer: AsyncEventStore = field(init=False)
    api: web.AppRunner | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.writer = AsyncEventStore(self.services.store)

    async def start(self) -> None:
        self.writer.start()
        deps = api_deps(self.services, self.writer, self.settings)
        self.api = await serve_api(
            deps, self.settings.computewatch_api_host, self.settings.computewatch_api_port
        )
        log.warning(
            "HTTP API on http://%s:%s",
            self.settings.computewatch_api_host,
            self.settings.computewatch_api_port,
        )

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.cleanup()
            self.api = None
        await self.writer.aclose()
