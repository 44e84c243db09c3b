"""Work measured in a subprocess of its own, so that its peak RSS is its own (see README.md)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb


def _peak_mb() -> float:
    """The process's own peak RSS: see _high_water_mb (ru_maxrss starts from the parent's)."""
    return _high_water_mb()


def import_raw(n: int, db: Path) -> dict[str, float]:
    """Insert the log's rows from Arrow into a plain table with the events columns, no keys."""
    from benchmarks.synth import read_full
    from store.rows import COLUMNS

    rows = read_full(n)  # noqa: F841  (scanned by name below)
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(RAW_TABLE)
    select = ", ".join(
        f"{c}::UUID"
        if c in ("event_id", "target_event_id")
        else f"{c}::JSON"
        if c == "payload"
        else c
        for c in COLUMNS
    )
    t0 = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    con.execute(f"INSERT INTO raw_events SELECT {select} FROM rows")
    con.execute("COMMIT")
    seconds = time.perf_counter() - t0
    con.close()
    return {"seconds": seconds, "peak_mb": _peak_mb()}


def import_store(n: int, db: Path) -> dict[str, float]:
    """Bulk-import the log from its Parquet file, streamed chunk by chunk (rows as a caller
    stages them) through EventStore.import_chunks into a new store; reading the file counts."""
    from benchmarks.synth import IMPORT_NOW, staged_chunks
    from store.clock import ManualClock
    from store.log import EventStore

    store = EventStore(db, clock=ManualClock(IMPORT_NOW))
    t0 = time.perf_counter()
    result = store.import_chunks(lambda: staged_chunks(n))
    seconds = time.perf_counter() - t0
    store.close()
    return {"seconds": seconds, "peak_mb": _peak_mb(), "imported": result.imported}


def import_cli(n: int, db: Path) -> dict[str, float]:
    """`computewatch import` of the log as the project's JSONL (what a user runs), in-process."""
    from benchmarks.synth import ensure_jsonl
    from bot.cli import main as cli

    path = ensure_jsonl(n)
    os.environ["COMPUTEWATCH_SEED"] = "false"
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        status = cli(["--db", str(db), "import", str(path)])
    seconds = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"computewatch import failed with status {status}")
    # The parsing workers are spawned (a new interpreter, not a fork): ru_maxrss of the
    # children is the peak of the largest of them alone.
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": _peak_mb(), "worker_peak_mb": workers_mb}


def positions(db: Path) -> dict[str, float]:
    """Open the store and answer a position now and as of the past: the peak RSS of the process,
    and how far the two queries took it above the RSS the opened store held."""
    from store.log import EventStore
    from store.queries import Queries

    store = EventStore(db)
    q = Queries(store)
    opened_mb = _rss_mb()
    t0 = time.perf_counter()
    q.position("anthropic")
    q.position(
        "openai",
        as_of=datetime(2025, 6, 30, tzinfo=UTC),
        known_at=datetime(2025, 7, 31, tzinfo=UTC),
    )
    seconds = time.perf_counter() - t0
    store.close()
    peak = _high_water_mb()
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "opened_mb": opened_mb,
        "query_mb": peak - opened_mb,
    }


def _high_water_mb() -> float:
    """This process's peak RSS (Linux VmHWM). Unlike ru_maxrss, it does not start from the RSS
    the parent had when it forked this process: after the rebuild group (5 GB in the parent),
    ru_maxrss reported 5 GB here."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _rss_mb() -> float:
    """The resident set size now (Linux), in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


RAW_TABLE = """
CREATE TABLE raw_events (
    seq BIGINT, event_id UUID, stream_id VARCHAR, version INTEGER, type VARCHAR,
    schema SMALLINT, occurred_at TIMESTAMPTZ, recorded_at TIMESTAMPTZ, actor VARCHAR,
    source_url VARCHAR, source_title VARCHAR, idempotency_key VARCHAR, payload JSON,
    deal_id VARCHAR, lab VARCHAR, kind VARCHAR, status VARCHAR, capacity_mw DOUBLE,
    value_usd DOUBLE, chips STRUCT(vendor VARCHAR, family VARCHAR, count BIGINT),
    term_years DOUBLE, online_from VARCHAR, location VARCHAR, title VARCHAR, online_mw DOUBLE,
    counterparties STRUCT(party VARCHAR, role VARCHAR)[], link_relation VARCHAR,
    link_other VARCHAR, target_event_id UUID
)
"""

JOBS = {"import_raw": import_raw, "import_store": import_store, "import_cli": import_cli}


def main() -> None:
    job = sys.argv[1]
    if job == "positions":
        out = positions(Path(sys.argv[2]))
    else:
        out = JOBS[job](int(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
