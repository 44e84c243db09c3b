"""Run the Discord bot until SIGTERM/SIGINT, then shut down cleanly: the gateway closes, pending
appends finish (AsyncEventStore.aclose), and only then does the database close."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from bot.background import Background
from bot.services import Services, open_services
from bot.settings import Settings

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def serve(
    settings: Settings,
    services: Services,
    *,
    stop: asyncio.Event | None = None,
    **client_kwargs: Any,
) -> int:
    """Run the bot until `stop` is set or a stop signal arrives; returns the exit status."""
    from bot.discord_app.client import create_bot

    if settings.discord_token is None:
        log.error("DISCORD_TOKEN is not set")
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
        stopper.cancel()
        # close() disconnects and then waits for the writer to finish what is queued.
        await bot.close()
        if not runner.done():
            await asyncio.wait({runner}, timeout=10)
        for sig in installed:
            loop.remove_signal_handler(sig)
    return status


def run_discord(settings: Settings, db: Path) -> int:
    """The `computewatch run` entry point when DISCORD_TOKEN is set; blocks until stopped."""
    services = open_services(db, seed=settings.computewatch_seed)

    async def main() -> int:
        # The HTTP API runs beside the bot, so `computewatch sql` and pipelines reach the log.
        background = Background(services, settings)
        await background.start()
        try:
            return await serve(settings, services)
        finally:
            await background.stop()

    try:
        return asyncio.run(main())
    finally:
        services.close()  # after the writers stopped: no append is lost
