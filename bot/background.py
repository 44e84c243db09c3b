"""The services that run beside any front end: the single writer, the HTTP API and, when
COMPUTEWATCH_FEEDS is set, feed polling."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiohttp import web

from bot.api import api_deps, serve_api
from bot.feeds import FeedService, LogNotifier, Notifier, configured_feeds
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
    # Where feed candidates and notices go: the Discord review channel (through a RelayNotifier)
    # when the bot runs, the log otherwise.
    feed_notifier: Notifier | None = None
    feeds: FeedService | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.writer = AsyncEventStore(self.services.store)
        urls = configured_feeds(self.settings)  # a bad URL is refused before anything starts
        if urls:
            self.feeds = FeedService(
                self.settings,
                self.writer,
                self.services.store.clock,
                self.feed_notifier or LogNotifier(),
                urls,
            )

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
        if self.feeds is not None:
            await self.feeds.start()

    async def stop(self) -> None:
        if self.feeds is not None:
            await self.feeds.stop()  # before the writer: the polls in flight end first
        if self.api is not None:
            await self.api.cleanup()
            self.api = None
        await self.writer.aclose()
