"""`computewatch run --sync-global`, the owner's explicit action, run as a user would: the CLI's
main() in this process's main thread, the fake Discord on 127.0.0.1 in another thread, and
SIGTERM to stop it. Commands reach the global route only with the flag."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.cli import main
from bot.services import open_services
from tests.fakediscord import TOKEN, FakeDiscord

GLOBAL_ROUTE = "/applications/{app_id}/commands"
GUILD_ROUTE = "/applications/{app_id}/guilds/{guild_id}/commands"

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="the runner's signal handlers need the main thread",
)


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "ledger.duckdb"
    open_services(path).close()
    return path


@contextmanager
def fake_discord_in_a_thread() -> Iterator[FakeDiscord]:
    """The fake Discord served by its own event loop, since main() runs the bot's loop here."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: list[FakeDiscord] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            fake = FakeDiscord()
            await fake.start()
            fake.patch_discord()
            holder.append(fake)

        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="fake-discord", daemon=True)
    thread.start()
    assert started.wait(10), "the fake Discord did not start"
    try:
        yield holder[0]
    finally:
        asyncio.run_coroutine_threadsafe(holder[0].stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def stop_when(predicate: Callable[[], bool], *, within: float = 20.0) -> threading.Thread:
    """SIGTERM this process (as `docker stop` or systemd would) once predicate() holds."""

    def watch() -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, name="stopper", daemon=True)
    watcher.start()
    return watcher


def run_cli(
    args: list[str], fake: FakeDiscord, seeded_db: Path, tmp_path: Path, mp: pytest.MonkeyPatch
) -> list[str]:
    db = tmp_path / "computewatch.duckdb"
    shutil.copy(seeded_db, db)
    mp.chdir(tmp_path)  # no stray .env is read
    mp.setenv("DISCORD_TOKEN", TOKEN)
    mp.setenv("DISCORD_GUILD_ID", str(fake.guild_id))
    mp.setenv("COMPUTEWATCH_API_PORT", "0")
    mp.setenv("COMPUTEWATCH_SEED", "false")
    mp.delenv("DISCORD_SYNC_GLOBAL", raising=False)

    # The bot identifies on the gateway only after setup_hook, so every sync is done by then.
    watcher = stop_when(lambda: bool(fake.identifies))
    status = main(["--db", str(db), *args])
    watcher.join(5)

    assert status == 0
    return [r.route for r in fake.requests if r.method == "PUT"]


def test_run_with_sync_global_also_syncs_the_commands_globally(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_discord_in_a_thread() as fake:
        routes = run_cli(["run", "--sync-global"], fake, seeded_db, tmp_path, monkeypatch)

    assert routes == [GUILD_ROUTE, GLOBAL_ROUTE]
    assert {c["name"] for c in fake.global_commands} >= {"position", "update", "record"}


def test_run_without_the_flag_syncs_to_the_guild_only(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_discord_in_a_thread() as fake:
        routes = run_cli(["run"], fake, seeded_db, tmp_path, monkeypatch)

    assert routes == [GUILD_ROUTE]
    assert fake.global_commands == []
    assert fake.guild_commands[fake.guild_id]


def test_sync_global_without_a_token_is_refused_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)

    status = main(["--db", str(tmp_path / "x.duckdb"), "run", "--sync-global"])

    assert status == 2
    assert "run --sync-global needs DISCORD_TOKEN" in capsys.readouterr().err
    assert not (tmp_path / "x.duckdb").exists()
