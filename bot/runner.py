"""Run the Discord bot until SIGTERM/SIGINT, then shut down cleanly: the gateway closes, pending
appends finish (AsyncEventStore.aclose), and only then does the database close."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from bot.api import SNAPSHOT
from bot.background import Background
from bot.feeds import RelayNotifier
from bot.services import Services, open_services
from bot.settings import Settings

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(
    settings: Settings,
    services: Services,
    *,
    stop: asyncio.Event | None = None,
    feeds: RelayNotifier | None = None,
    **client_kwargs: Any,
) -> int:
    """Run the bot until `stop` is set or a stop signal arrives; returns the exit status.

    With `feeds`, feed candidates and notices go to the bot's review channel while it runs."""
    from bot.discord_app.client import create_bot

    if settings.discord_token is None:
        log.error("DISCORD_TOKEN is not set")
        return 2
    from bot.schedule import ScheduleSettingsError, validate_schedule

    try:
        validate_schedule(settings)  # a bad DIGEST_CRON or DIGEST_TZ stops before connecting
    except ScheduleSettingsError as exc:
        log.error("%s", exc)
        return 2
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            log.debug("cannot handle %s here; stop the bot with the stop event", sig.name)
    bot = create_bot(settings, services=services, **client_kwargs)
    if feeds is not None:
        from bot.discord_app.cogs.review import DiscordNotifier

        feeds.attach(DiscordNotifier(bot))
    runner = asyncio.create_task(
        bot.start(settings.discord_token.get_secret_value()), name="computewatch-discord"
    )
    stopper = asyncio.create_task(stop.wait(), name="computewatch-stop")
    try:
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            log.info("stop requested: closing the Discord connection")
        status = 0
        if runner in done and runner.exception() is not None:
            log.error("the bot stopped: %s", runner.exception())
            status = 1
    finally:
        if feeds is not None:
            feeds.attach(None)  # polls from now on log their notices; /review still lists them
        stopper.cancel()
        # close() disconnects and then waits for the writer to finish what is queued.
        await bot.close()
        if not runner.done():
            await asyncio.wait({runner}, timeout=10)
        for sig in installed:
            loop.remove_signal_handler(sig)
    return status


async def serve_with_background(
    settings: Settings,
    services: Services,
    *,
    stop: asyncio.Event | None = None,
    **client_kwargs: Any,
) -> int:
    """The bot with the background services beside it: the HTTP API (so `computewatch sql` and
    pipelines reach the log) and feed polling that posts candidates to the review channel."""
    relay = RelayNotifier()
    background = Background(services, settings, feed_notifier=relay)
    await background.start()
    try:
        client_kwargs.setdefault("writer", background.writer)  # one writer: one group commit
        if background.api is not None:  # /sql in Discord shares the API's snapshot file
            client_kwargs.setdefault("sql", background.api.app[SNAPSHOT])
        return await serve(settings, services, stop=stop, feeds=relay, **client_kwargs)
    finally:
        await background.stop()


def run_discord(settings: Settings, db: Path) -> int:
    """The `computewatch run` entry point when DISCORD_TOKEN is set; blocks until stopped."""
    from bot.schedule import validate_schedule

    validate_schedule(settings)  # ScheduleSettingsError names the setting; nothing has started
    services = open_services(db, seed=settings.computewatch_seed)

    try:
        return asyncio.run(serve_with_background(settings, services))
    finally:
        services.close()  # after the writers stopped: no append is lost
