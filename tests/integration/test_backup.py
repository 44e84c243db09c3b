"""`computewatch backup DIR` (also while the bot runs and appends) and `computewatch restore
BACKUP NEW_DB`: the restored file holds the same events (ids, seq, versions, times, payloads)
and answers the same positions; a damaged backup or an existing target is refused."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from store.backup import MANIFEST
from store.log import EventStore
from store.queries import Queries
from tests.factories import make_deal_reported, make_terms_revision, manual_clock
from tests.integration.headless import (
    AUTH,
    ROOT,
    HeadlessBot,
    Writer,
    check_log,
    positions_json,
)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or clean_env(),
    )


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("COMPUTEWATCH_", "DISCORD_"))}


def small_log(db: Path) -> None:
    with EventStore(db, clock=manual_clock()) as store:
        store.append([make_deal_reported("acme-backup-1", capacity_mw=700)])
        store.append([make_terms_revision("acme-backup-1", capacity_mw=900)])


@pytest.mark.timeout(300)
async def test_a_backup_taken_while_the_bot_appends_restores_the_same_events_and_positions(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.duckdb"
    bot = HeadlessBot(db, tmp_path / "bot.log", seed=True)
    writers = [Writer(f"w{i}", random.Random(i)) for i in range(2)]
    backup = tmp_path / "backups" / "today"
    bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            await bot.wait_ready(http)
            async with http.post(f"{bot.url}/backup") as response:
                refused = response.status
            tasks = [asyncio.create_task(w.stream(http, bot.url)) for w in writers]
            await asyncio.sleep(0.5)
            made = await asyncio.to_thread(
                cli, "--db", str(db), "backup", str(backup), env=bot.env()
            )
            await asyncio.sleep(0.3)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        assert bot.stop() == 0, bot.output()

    restored = tmp_path / "restored.duckdb"
    done = cli("restore", str(backup), str(restored))

    assert refused == 401  # a backup holds everything: the token is required
    assert made.returncode == 0, made.stderr
    assert "through the running bot" in made.stdout
    assert done.returncode == 0, done.stderr
    manifest = json.loads((backup / MANIFEST).read_text())
    head = manifest["head"]
    with EventStore(db) as original, EventStore(restored) as copy:
        before = list(original.read_all())
        after = list(copy.read_all())
        known_at = before[head - 1].recorded_at
        as_known = Queries(original).positions(known_at=known_at)
        restored_now = Queries(copy).positions()
    assert before[head:] and head > 157  # appends ran before and after the backup's snapshot
    assert after == before[:head]  # same ids, seq, versions, times, payloads, keys
    assert all(e.recorded_at > known_at for e in before[head:])
    assert positions_json(restored_now) == positions_json(as_known)
    check_log(restored, [], acked=[])  # the rebuilt projection equals a fold of the log


def test_backup_reads_the_file_when_no_bot_runs_and_restore_makes_the_same_log(
    tmp_path: Path,
) -> None:
    db = tmp_path / "idle.duckdb"
    small_log(db)
    backup = tmp_path / "bk"
    restored = tmp_path / "restored.duckdb"

    made = cli("--db", str(db), "backup", str(backup))
    done = cli("restore", str(backup), str(restored))

    assert made.returncode == 0, made.stderr
    assert f"backed up 2 events (seq 1..2) from {db}" in made.stdout
    assert done.returncode == 0, done.stderr
    assert "restored 2 events" in done.stdout
    with EventStore(db) as original, EventStore(restored) as copy:
        assert list(copy.read_all()) == list(original.read_all())
        assert positions_json(Queries(copy).positions()) == positions_json(
            Queries(original).positions()
        )


def test_restore_refuses_to_overwrite_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "idle.duckdb"
    small_log(db)
    backup = tmp_path / "bk"
    assert cli("--db", str(db), "backup", str(backup)).returncode == 0
    target = tmp_path / "existing.duckdb"
    with EventStore(target, clock=manual_clock()) as other:
        other.append([make_deal_reported("acme-other-1")])
    size = target.stat().st_size

    done = cli("restore", str(backup), str(target))

    assert done.returncode == 2
    assert "already exists" in done.stderr
    assert target.stat().st_size == size
    with EventStore(target) as other:
        assert [e.stream_id for e in other.read_all()] == ["deal:acme-other-1"]


def test_a_damaged_backup_is_refused_and_nothing_is_restored(tmp_path: Path) -> None:
    db = tmp_path / "idle.duckdb"
    small_log(db)
    backup = tmp_path / "bk"
    assert cli("--db", str(db), "backup", str(backup)).returncode == 0
    events = backup / "events.parquet"
    data = bytearray(events.read_bytes())
    data[len(data) // 2] ^= 0xFF
    events.write_bytes(bytes(data))
    restored = tmp_path / "restored.duckdb"

    done = cli("restore", str(backup), str(restored))

    assert done.returncode == 2
    assert "events.parquet does not match its checksum" in done.stderr
    assert not restored.exists()
    assert [p.name for p in tmp_path.iterdir() if "restor" in p.name] == []


def test_backup_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    db = tmp_path / "idle.duckdb"
    small_log(db)
    backup = tmp_path / "bk"
    backup.mkdir()
    (backup / "notes.txt").write_text("keep me")

    made = cli("--db", str(db), "backup", str(backup))

    assert made.returncode == 2
    assert "is not empty" in made.stderr
    assert [p.name for p in backup.iterdir()] == ["notes.txt"]


async def test_backup_while_the_bot_runs_without_a_token_says_what_is_needed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.duckdb"
    bot = HeadlessBot(db, tmp_path / "bot.log", seed=False)
    bot.start()
    try:
        async with aiohttp.ClientSession() as http:
            await bot.wait_ready(http)
            async with http.post(f"{bot.url}/backup", headers=AUTH) as response:
                assert response.status == 200  # the token the bot has works
        env = {k: v for k, v in bot.env().items() if k != "COMPUTEWATCH_API_TOKEN"}
        made = await asyncio.to_thread(cli, "--db", str(db), "backup", str(tmp_path / "b"), env=env)
    finally:
        assert bot.stop() == 0, bot.output()

    assert made.returncode == 2
    assert "COMPUTEWATCH_API_TOKEN" in made.stderr
    assert not (tmp_path / "b").exists()


def test_a_backup_of_an_older_schema_restores_into_the_current_one(tmp_path: Path) -> None:
    import duckdb

    from store.backup import backup_file, restore_backup
    from store.migrations import bundled_migrations, migrate

    current = tmp_path / "current.duckdb"
    small_log(current)
    # The same log in a file of schema 5: before the read models had a checkpoint (006).
    old = tmp_path / "schema5.duckdb"
    con = duckdb.connect(str(old))
    migrate(con, [m for m in bundled_migrations() if m.version <= 5])
    con.execute(f"ATTACH '{current}' AS cur (READ_ONLY)")
    con.execute("INSERT INTO events SELECT * FROM cur.events")
    con.close()

    manifest = backup_file(old, tmp_path / "bk")
    restore_backup(tmp_path / "bk", tmp_path / "restored.duckdb")

    assert manifest.schema_version == 5
    with EventStore(current) as original, EventStore(tmp_path / "restored.duckdb") as copy:
        assert copy.projected == copy.head == 2
        assert list(copy.read_all()) == list(original.read_all())
        assert positions_json(Queries(copy).positions()) == positions_json(
            Queries(original).positions()
        )
        assert Queries(copy).position("openai").capacity_mw.contracted == 900
