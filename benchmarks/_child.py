"""Work measured in a subprocess of its own, so that its peak RSS is its own (see README.md)."""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


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
    """Bulk-import the staged log through EventStore.import_staged into a new store."""
    from benchmarks.synth import IMPORT_NOW, read_full, to_staged
    from store.clock import ManualClock
    from store.log import EventStore

    staged = to_staged(read_full(n))
    store = EventStore(db, clock=ManualClock(IMPORT_NOW))
    t0 = time.perf_counter()
    result = store.import_staged(staged)
    seconds = time.perf_counter() - t0
    store.close()
    return {"seconds": seconds, "peak_mb": _peak_mb(), "imported": result.imported}


def positions(db: Path) -> dict[str, float]:
    """Open the store and answer a position now and as of the past (peak RSS of a reader)."""
    from store.log import EventStore
    from store.queries import Queries

    store = EventStore(db)
    q = Queries(store)
    t0 = time.perf_counter()
    q.position("anthropic")
    q.position(
        "openai",
        as_of=datetime(2025, 6, 30, tzinfo=UTC),
        known_at=datetime(2025, 7, 31, tzinfo=UTC),
    )
    seconds = time.perf_counter() - t0
    store.close()
    return {"seconds": seconds, "peak_mb": _peak_mb()}


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

JOBS = {"import_raw": import_raw, "import_store": import_store}


def main() -> None:
    job = sys.argv[1]
    if job == "positions":
        out = positions(Path(sys.argv[2]))
    else:
        out = JOBS[job](int(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
