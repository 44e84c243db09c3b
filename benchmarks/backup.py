"""Group `backup`: `store.backup` on the 1M-event database: backup, restore, sizes, and how long
appends wait while a backup runs beside them."""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import synth
from events.envelope import NewEvent
from events.payloads import SourceAdded
from store.backup import backup_file, backup_store, restore_backup
from store.log import EventStore

APPENDS_DURING_BACKUP = 100


def bench_backup(r: Any, n: int, runs: int) -> None:
    """backup_s / restore_s (medians), backup_mb, and the p50 of single appends made while a
    backup of the same store runs (appends do not wait for the backup's read transaction)."""
    source = synth.ensure_db(n)
    work = synth.RESULTS / "scratch" / "backup"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    backups, restores = [], []
    for i in range(runs):
        target = work / f"b{i}"
        t0 = time.perf_counter()
        manifest = backup_file(source, target)
        backups.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        restore_backup(target, work / f"r{i}.duckdb")
        restores.append(time.perf_counter() - t0)
    size = sum(t.bytes for t in manifest.tables.values())
    r.add("backup_s_1m", statistics.median(backups), "s")
    r.add("restore_s_1m", statistics.median(restores), "s")
    r.add("backup_mb_1m", size / 1e6, "MB")
    r.add("backup_db_mb_1m", source.stat().st_size / 1e6, "MB")
    _append_during_backup(r, work)
    shutil.rmtree(work, ignore_errors=True)


def _append_during_backup(r: Any, work: Path) -> None:
    db = work / "r0.duckdb"  # a restored copy: writable, the cached database stays clean
    with EventStore(db) as store:
        stream = f"deal:{sorted(store.deal_ids())[0]}"
        alone = _append_times(store, stream, "alone")
        stop = threading.Event()
        made = 0

        def back_up_again_and_again() -> None:
            nonlocal made
            while not stop.is_set():
                backup_store(store, work / f"live{made}")
                made += 1

        thread = threading.Thread(target=back_up_again_and_again)
        thread.start()
        try:
            during = _append_times(store, stream, "during")
        finally:
            stop.set()
            thread.join()
    r.add("append_alone_p50_ms_1m", statistics.median(alone) * 1000, "ms")
    r.add("append_during_backup_p50_ms_1m", statistics.median(during) * 1000, "ms")
    r.add("backups_during_appends_1m", made, "backups")


def _append_times(store: EventStore, stream: str, label: str) -> list[float]:
    times = []
    for i in range(APPENDS_DURING_BACKUP):
        event = NewEvent(
            stream_id=stream,
            payload=SourceAdded(note=f"{label} {i}"),
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            actor="cli",
            source_url=f"https://news.example.com/backup-bench/{label}/{i}",
        )
        t0 = time.perf_counter()
        store.append([event])
        times.append(time.perf_counter() - t0)
    return times
