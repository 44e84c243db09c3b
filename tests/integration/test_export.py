"""`computewatch export`: JSONL that imports back to the same log, and Parquet by month."""

from __future__ import annotations

from pathlib import Path

import duckdb

from bot.services import seed_ledger
from store.log import EventStore
from store.transfer import export_events, import_events


def test_export_then_import_into_an_empty_database_gives_the_same_log(tmp_path: Path) -> None:
    with EventStore(tmp_path / "a.duckdb") as source:
        seed_ledger(source)
        paths = export_events(source, tmp_path / "out")
        before = [(e.seq, e.event_id, e.stream_id, e.version, e.type) for e in source.read_all()]

    with EventStore(tmp_path / "b.duckdb") as target:
        report = import_events(target, paths["jsonl"])
        after = [(e.seq, e.event_id, e.stream_id, e.version, e.type) for e in target.read_all()]

    assert report.new == len(before) and report.rejected == []
    assert after == before


def test_parquet_by_month_is_a_hive_dataset_with_every_event(tmp_path: Path) -> None:
    with EventStore(tmp_path / "a.duckdb") as source:
        seed_ledger(source)
        total = source.count()
        paths = export_events(source, tmp_path / "out", by_month=True)

    months = sorted(p.name for p in paths["parquet"].iterdir())
    con = duckdb.connect()
    rows = con.execute(
        "SELECT count(*), count(DISTINCT month) FROM read_parquet(?, hive_partitioning = true)",
        [str(paths["parquet"] / "*" / "*.parquet")],
    ).fetchone()

    assert months[0].startswith("month=2023-") and months[-1].startswith("month=2026-")
    assert rows == (total, len(months))
