"""One writer per database file: while the bot runs, no other process may open its file for
writing, not even after the bot has made its SQL snapshot (a copy of the file).

POSIX record locks, which DuckDB takes on the file, belong to the process and are all released
when the process closes *any* descriptor of that file; a copy made by opening the file by name
silently gave up the bot's lock, and a second writer could then open the file beside it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp

from store.log import EventStore
from store.snapshot import SnapshotSql
from tests.factories import make_deal_reported, manual_clock
from tests.integration.headless import AUTH, ROOT, HeadlessBot

OPEN_FOR_WRITING = """
import sys
from store.errors import DatabaseLockedError
from store.log import EventStore
try:
    EventStore(sys.argv[1]).close()
except DatabaseLockedError:
    print("locked")
else:
    print("opened")
"""


def second_writer(db: Path) -> str:
    """What another process gets when it opens `db` for writing: "locked" or "opened"."""
    done = subprocess.run(
        [sys.executable, "-c", OPEN_FOR_WRITING, str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() or done.stderr


def test_the_store_keeps_its_file_locked_after_a_sql_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "log.duckdb"
    with EventStore(db, clock=manual_clock()) as store, SnapshotSql(store) as snapshot:
        store.append([make_deal_reported("acme-lock-1")])
        snapshot.refresh()
        store.append([make_deal_reported("acme-lock-2")])
        snapshot.refresh()

        assert second_writer(db) == "locked"
        assert snapshot.run("SELECT count(*) FROM events").result.rows == [(2,)]


async def test_a_running_bot_refuses_a_second_writer_after_answering_sql(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    bot = HeadlessBot(db, tmp_path / "bot.log", seed=False)
    bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            await bot.wait_ready(http)  # the API made its first snapshot at start-up
            body = [make_deal_reported("acme-lock-3").to_json_dict()]
            async with http.post(f"{bot.url}/events", json=body, headers=AUTH) as response:
                assert response.status == 201
            async with http.post(
                f"{bot.url}/sql", json={"query": "SELECT count(*) FROM events"}
            ) as response:
                assert (await response.json())["rows"] == [[1]]

            outcome = second_writer(db)
    finally:
        assert bot.stop() == 0, bot.output()

    assert outcome == "locked"
