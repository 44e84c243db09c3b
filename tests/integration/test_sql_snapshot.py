"""The SQL snapshot is copied while appends go on: each snapshot holds the log exactly as it
was at its head, appends made during a copy are neither lost nor half in it, and a checkpoint
during a copy makes the snapshot copy again."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from store import snapshot as snapshot_module
from store.log import EventStore
from store.snapshot import SnapshotSql
from tests.factories import make_deal_reported, make_source_added, manual_clock


def snapshot_state(snapshot: SnapshotSql) -> tuple[int, tuple[object, ...]]:
    """The head of the snapshot that answered (a run refreshes it if the log moved on), and
    what that snapshot holds: events, last seq, the read models' checkpoint, deals, streams."""
    answer = snapshot.run(
        "SELECT (SELECT count(*) FROM events), (SELECT max(seq) FROM events), "
        "(SELECT seq FROM projection_checkpoint WHERE projection = 'deal_state'), "
        "(SELECT count(*) FROM deal_state), "
        "(SELECT count(DISTINCT stream_id) FROM events WHERE stream_id LIKE 'deal:%')"
    )
    return answer.snapshot_seq, answer.result.rows[0]


def checkpoint_settings(store: EventStore) -> list[tuple[object, ...]]:
    return (
        store.cursor()
        .execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('checkpoint_threshold', 'auto_checkpoint_skip_wal_threshold') ORDER BY name"
        )
        .fetchall()
    )


def test_snapshots_made_while_appends_go_on_hold_the_log_at_their_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        real_copy = snapshot_module._copy_open_file
        during_copies = []

        def slow_copy(fd: int, target: Path) -> None:
            """The copy of a large file: it takes a while (and appends do not wait for it)."""
            before = store.head
            time.sleep(0.05)
            real_copy(fd, target)
            during_copies.append(store.head - before)

        monkeypatch.setattr(snapshot_module, "_copy_open_file", slow_copy)
        settings_before = checkpoint_settings(store)
        store.append([make_deal_reported(f"acme-{n}") for n in range(200)])
        appended = threading.Event()
        stop = threading.Event()
        written = [200]

        def append_meanwhile() -> None:
            n = 0
            while not stop.is_set():
                # single events, and now and then a batch large enough to log a lot at once
                size = 400 if n % 25 == 0 else 1
                store.append([make_source_added(f"acme-{(n + i) % 200}") for i in range(size)])
                written[0] += size
                n += 1
                appended.set()

        with SnapshotSql(store) as snapshot:
            writer = threading.Thread(target=append_meanwhile)
            writer.start()
            try:
                states = []
                for _ in range(8):
                    appended.wait(5)
                    appended.clear()
                    states.append(snapshot_state(snapshot))
            finally:
                stop.set()
                writer.join()

            heads = [head for head, _ in states]
            assert heads == sorted(heads) and len(set(heads)) > 1  # the log moved between them
            for head, (events, last, folded, deals, streams) in states:
                assert (events, last, folded) == (head, head, head)  # whole, and caught up
                assert deals == streams == 200
        assert store.count() == store.head == written[0]  # nothing lost meanwhile
        assert checkpoint_settings(store) == settings_before  # automatic checkpoints are back
        assert sum(during_copies) > 0  # appends were written while the file was copied


def test_a_checkpoint_during_the_copy_makes_the_snapshot_copy_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with EventStore(tmp_path / "log.duckdb", clock=manual_clock()) as store:
        store.append([make_deal_reported("acme-1")])
        real_copy = snapshot_module._copy_open_file
        copies = []

        def copy_after_a_checkpoint(fd: int, target: Path) -> None:
            if not copies:  # the first copy: another write checkpoints the file meanwhile
                store.append([make_source_added("acme-1")])
                store.cursor().execute("CHECKPOINT")
            copies.append(target)
            real_copy(fd, target)

        monkeypatch.setattr(snapshot_module, "_copy_open_file", copy_after_a_checkpoint)
        with caplog.at_level(logging.INFO, logger="store.snapshot"), SnapshotSql(store) as snapshot:
            head = snapshot.refresh()

            assert len(copies) == 2
            assert head == store.head == 2  # the second copy, made with appends waiting
            assert snapshot_state(snapshot) == (2, (2, 2, 2, 1, 1))
        assert "copying again" in caplog.text
