"""`computewatch import`: all-or-nothing on bad input, resumable after a SIGKILL, no duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from events.envelope import NewEvent
from events.payloads import DealReported, SourceAdded
from store.log import EventStore

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 1, 1, tzinfo=UTC)


def write_events(path: Path, deals: int, extra_per_deal: int) -> int:
    """A JSONL file of valid events: each deal reported, then corroborated a few times."""
    lines = 0
    with path.open("w", encoding="utf-8") as fh:
        for d in range(deals):
            stream = f"deal:synthetic-{d}"
            events = [
                NewEvent(
                    stream_id=stream,
                    occurred_at=START + timedelta(hours=d),
                    actor="cli",
                    source_url=f"https://example.com/deal/{d}",
                    idempotency_key=f"synthetic-{d}-0",
                    payload=DealReported(
                        lab="openai",
                        kind="cloud_contract",
                        status="signed",
                        capacity_mw=10.0,
                        title=f"synthetic deal {d}",
                    ),
                )
            ]
            for n in range(1, extra_per_deal + 1):
                events.append(
                    NewEvent(
                        stream_id=stream,
                        occurred_at=START + timedelta(hours=d, minutes=n),
                        actor="cli",
                        source_url=f"https://example.com/deal/{d}/{n}",
                        idempotency_key=f"synthetic-{d}-{n}",
                        payload=SourceAdded(note=str(n)),
                    )
                )
            for event in events:
                fh.write(json.dumps(event.to_json_dict()) + "\n")
                lines += 1
    return lines


def run_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COMPUTEWATCH_SEED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "--db", str(db), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_a_file_with_one_invalid_line_imports_nothing_and_names_the_line(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    write_events(good, deals=3, extra_per_deal=1)
    lines = good.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], '{"type": "DealReported"', *lines[1:]]) + "\n")
    db = tmp_path / "t.duckdb"

    result = run_cli(db, "import", str(bad))

    assert result.returncode == 1
    assert "line 2: not JSON" in result.stderr
    assert "nothing was imported" in result.stderr
    with EventStore(db) as store:
        assert store.count() == 0


def test_skip_invalid_imports_the_valid_lines_and_reports_the_rest(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    write_events(good, deals=2, extra_per_deal=1)
    unknown_lab = json.loads(good.read_text().splitlines()[0])
    unknown_lab["payload"]["lab"] = "antropic"
    unknown_lab["stream_id"] = "deal:other"
    unknown_lab["idempotency_key"] = "other"
    bad = tmp_path / "mixed.jsonl"
    bad.write_text(good.read_text() + json.dumps(unknown_lab) + "\n")
    db = tmp_path / "t.duckdb"

    result = run_cli(db, "import", str(bad), "--skip-invalid")

    assert result.returncode == 0, result.stderr
    assert "4 new, 0 already present, 1 rejected" in result.stdout
    assert "line 5:" in result.stderr and "anthropic" in result.stderr


def test_importing_the_same_file_twice_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=5, extra_per_deal=2)
    db = tmp_path / "t.duckdb"
    run_cli(db, "import", str(path))

    again = run_cli(db, "import", str(path))

    assert "0 new, 15 already present, 0 rejected" in again.stdout


def test_an_event_the_log_refuses_imports_nothing_and_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=3, extra_per_deal=2)
    orphan = json.loads(path.read_text().splitlines()[1])
    orphan.update(stream_id="deal:never-reported", idempotency_key="orphan")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(orphan) + "\n")
    db = tmp_path / "t.duckdb"

    result = run_cli(db, "import", str(path))

    assert result.returncode == 1
    assert "line 10: deal never-reported does not exist yet" in result.stderr
    assert "nothing was imported" in result.stderr
    with EventStore(db) as store:
        assert store.count() == 0


def test_skip_invalid_imports_around_an_event_the_log_refuses(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=3, extra_per_deal=2)
    lines = path.read_text().splitlines()
    orphan = json.loads(lines[1])
    orphan.update(stream_id="deal:never-reported", idempotency_key="orphan")
    path.write_text("\n".join([*lines[:4], json.dumps(orphan), *lines[4:]]) + "\n")
    db = tmp_path / "t.duckdb"

    result = run_cli(db, "import", str(path), "--skip-invalid")

    assert result.returncode == 0, result.stderr
    assert "9 new, 0 already present, 1 rejected" in result.stdout
    assert "line 5: deal never-reported does not exist yet" in result.stderr


def test_a_file_overlapping_the_log_adds_only_its_new_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=4, extra_per_deal=2)
    first_half = tmp_path / "half.jsonl"
    first_half.write_text("\n".join(path.read_text().splitlines()[:6]) + "\n")
    db = tmp_path / "t.duckdb"
    run_cli(db, "import", str(first_half))

    result = run_cli(db, "import", str(path))

    assert "6 new, 6 already present, 0 rejected" in result.stdout
    with EventStore(db) as store:
        assert [e.version for e in store.read_stream("deal:synthetic-3")] == [1, 2, 3]


def test_a_line_repeated_in_the_file_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=2, extra_per_deal=1)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    db = tmp_path / "t.duckdb"

    result = run_cli(db, "import", str(path))

    assert "4 new, 1 already present, 0 rejected" in result.stdout


@pytest.mark.timeout(300)
def test_an_import_killed_at_any_point_writes_all_or_nothing_and_completes_on_rerun(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.jsonl"
    total = write_events(path, deals=6_000, extra_per_deal=4)  # 30,000 events, 2 chunks
    env = {**os.environ, "COMPUTEWATCH_SEED": "false"}
    started = time.monotonic()
    assert run_cli(tmp_path / "whole.duckdb", "import", str(path)).returncode == 0
    whole = time.monotonic() - started

    for n, share in enumerate((0.5, 0.75, 0.95)):
        db = tmp_path / f"killed-{n}.duckdb"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "--db", str(db), "import", str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(whole * share)  # in the middle of reading, writing or committing
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        with EventStore(db) as store:
            stored = store.count()
        rerun = run_cli(db, "import", str(path))
        again = run_cli(db, "import", str(path))

        assert stored in (0, total)  # the import is one transaction
        assert rerun.returncode == 0, rerun.stderr
        assert f"{total - stored} new, {stored} already present" in rerun.stdout
        assert f"0 new, {total} already present" in again.stdout
        with EventStore(db) as store:
            assert store.count() == total
            assert store.head == total  # gap-free seq


def test_a_file_saved_with_a_byte_order_mark_imports_every_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, deals=2, extra_per_deal=1)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # as Notepad saves UTF-8
    db = tmp_path / "t.duckdb"

    done = run_cli(db, "import", str(path))

    assert "4 new, 0 already present, 0 rejected" in done.stdout, done.stdout + done.stderr
    with EventStore(db) as store:
        assert store.count() == 4
