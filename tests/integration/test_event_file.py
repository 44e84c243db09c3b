"""Parsing an event file in worker processes: the same report and the same log as parsing it in
the importing process, bad lines included; a killed import leaves no worker behind."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from store.log import EventStore
from store.transfer import ImportReport, import_events
from tests.integration.test_import_cli import ROOT, run_cli, write_events


def stored(db: Path) -> list[tuple[object, ...]]:
    with EventStore(db) as store:
        return [
            (e.seq, e.stream_id, e.version, e.type, e.idempotency_key, e.payload.model_dump_json())
            for e in store.read_all()
        ]


def import_with(path: Path, db: Path, workers: int, **kwargs: object) -> ImportReport:
    with EventStore(db) as store:
        return import_events(store, path, workers=workers, block_lines=5, **kwargs)  # type: ignore[arg-type]


def messy_file(path: Path) -> None:
    """Valid events with, between them, blank lines, CRLF endings and lines that are not events."""
    write_events(path, deals=8, extra_per_deal=3)  # 32 lines
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3] + "\r"  # a Windows line ending
    lines.insert(6, "")
    lines.insert(11, "{not json")
    lines.insert(19, json.dumps({"type": "NoSuchEvent", "payload": {}}))
    lines.insert(27, "   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_workers_report_and_store_exactly_what_parsing_here_does(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    messy_file(path)

    here = import_with(path, tmp_path / "here.duckdb", workers=1, skip_invalid=True)
    pooled = import_with(path, tmp_path / "pooled.duckdb", workers=2, skip_invalid=True)

    assert here.new == pooled.new == 32
    assert [r.line for r in pooled.rejected] == [12, 20]
    assert pooled.rejected == here.rejected
    assert pooled.lines == here.lines
    assert stored(tmp_path / "pooled.duckdb") == stored(tmp_path / "here.duckdb")


def test_with_workers_one_bad_line_still_imports_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    messy_file(path)

    report = import_with(path, tmp_path / "t.duckdb", workers=2)

    assert not report.written
    assert [r.line for r in report.rejected] == [12, 20]
    assert "not JSON" in report.rejected[0].reason
    assert stored(tmp_path / "t.duckdb") == []


def test_a_script_without_a_main_guard_imports_in_its_own_process(tmp_path: Path) -> None:
    """Spawned workers re-import the main module; one without the `__main__` guard makes them
    fail, and the import then parses the file itself instead of failing."""
    path = tmp_path / "events.jsonl"
    total = write_events(path, deals=10, extra_per_deal=2)
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from store.log import EventStore
            from store.transfer import import_events
            with EventStore(Path({str(tmp_path / "t.duckdb")!r})) as store:
                report = import_events(store, Path({str(path)!r}), workers=2, block_lines=4)
            print("imported", report.new)
            """
        )
    )

    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert f"imported {total}" in done.stdout
    assert "parsing the rest of the file in this process" in done.stderr


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_a_killed_import_leaves_no_worker_running(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    total = write_events(path, deals=6_000, extra_per_deal=4)  # 30,000 lines: two blocks
    db = tmp_path / "t.duckdb"
    env = {**os.environ, "COMPUTEWATCH_SEED": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--db", str(db), "import", str(path), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = wait_for_children(proc.pid, at_least=1)

    proc.send_signal(signal.SIGKILL)
    proc.wait()

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if alive(pid)]
    with EventStore(db) as store:
        assert store.count() in (0, total)


def wait_for_children(pid: int, *, at_least: int) -> list[int]:
    """The child processes of pid, once it has at_least of them (within 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = [
            int(c)
            for task in Path(f"/proc/{pid}/task").glob("*")
            for c in (task / "children").read_text().split()
        ]
        spawned = [c for c in children if "spawn_main" in cmdline(c)]
        if len(spawned) >= at_least:
            return spawned
        time.sleep(0.02)
    raise AssertionError(f"the import did not start {at_least} workers")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def test_workers_must_be_a_whole_number_of_at_least_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=1, extra_per_deal=0)

    refused = run_cli(tmp_path / "t.duckdb", "import", str(path), "--workers", "0")
    words = run_cli(tmp_path / "t.duckdb", "import", str(path), "--workers", "two")

    assert refused.returncode == words.returncode == 2
    assert "--workers: 0 is not at least 1" in refused.stderr
    assert "--workers: 'two' is not a whole number" in words.stderr
    assert not (tmp_path / "t.duckdb").exists()


def test_when_no_worker_can_start_the_file_is_parsed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.jsonl"
    total = write_events(path, deals=5, extra_per_deal=2)

    def no_process(*args: object, **kwargs: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(ProcessPoolExecutor, "submit", no_process)
    with caplog.at_level(logging.WARNING, logger="store.event_file"):
        report = import_with(path, tmp_path / "t.duckdb", workers=2)

    assert report.new == total
    assert "no parsing worker could start" in caplog.text
    assert len(stored(tmp_path / "t.duckdb")) == total
