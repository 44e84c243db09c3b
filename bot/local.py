"""`computewatch run` without a Discord token: the HTTP API, plus the console on a terminal."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

from bot.background import Background
from bot.console import run_console
from bot.services import open_services
from bot.settings import Settings

log = logging.getLogger(__name__)


def run_local(settings: Settings, db: Path) -> int:
    """Serve the API in a background loop; on a terminal, run the console in the foreground.

    Headless (no terminal, e.g. in a container) it serves until SIGTERM or SIGINT. Either way,
    pending writes finish and the database closes on the way out.
    """
    services = open_services(db, seed=settings.computewatch_seed)
    background = Background(services, settings)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        try:
            await background.start()
        except OSError as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        await stop.wait()
        await background.stop()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(),), name="computewatch-loop", daemon=True
    )
    thread.start()
    started.wait()
    try:
        if failure:
            print(
                f"error: cannot start the HTTP API on {settings.computewatch_api_host}:"
                f"{settings.computewatch_api_port}: {failure[0]}",
                file=sys.stderr,
            )
            return 2
        if sys.stdin.isatty():
            run_console(services, history=db.parent / "console_history")
        else:
            _wait_for_signal()
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        services.close()
    return 0


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    log.warning("running headless: the HTTP API serves until SIGTERM or SIGINT")
    done.wait()
