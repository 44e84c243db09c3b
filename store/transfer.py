"""Import and export of the log: the project's event JSONL in, JSONL and Parquet out."""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from events.envelope import NewEvent
from store.errors import StoreError
from store.event_file import BLOCK_LINES, Rejected, parsed_blocks, printable, read_events
from store.log import EventStore, ImportRefusedError

__all__ = ["ImportReport", "Rejected", "export_events", "import_events", "read_events"]

# Batches of the fallback of --skip-invalid when the log refuses events (see import_events).
IMPORT_BATCH = 5_000
EXPORT_PARQUET = "COPY (SELECT * FROM events ORDER BY seq) TO $path (FORMAT parquet)"
# Hive-style month partitions (month=YYYY-MM/...parquet) by valid time: what Spark, Trino,
# pandas and duckdb read as one partitioned dataset when the log outgrows one machine.
EXPORT_PARQUET_BY_MONTH = (
    "COPY (SELECT *, strftime(occurred_at, '%Y-%m') AS month FROM events ORDER BY seq) "
    "TO $path (FORMAT parquet, PARTITION_BY (month), OVERWRITE_OR_IGNORE true)"
)


@dataclass
class ImportReport:
    """What an import did: events new, already present, and lines rejected (with reasons)."""

    new: int = 0
    present: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    lines: int = 0
    written: bool = False


class _InvalidLines(Exception):
    """Raised by the chunks of an import when the file has invalid lines: nothing is written."""


def import_events(
    store: EventStore,
    path: Path,
    *,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    block_lines: int = BLOCK_LINES,
) -> ImportReport:
    """Import a JSONL file of events: all of it, in one transaction, or nothing.

    The file is read once: each line is validated, and the events are staged in chunks that go
    straight into the import's transaction (EventStore.import_chunks), so that memory stays
    bounded whatever the size of the file. With any invalid line nothing is imported (the rest
    of the file is still read, so that every bad line is reported), unless skip_invalid is set.
    An event the log refuses (a version conflict, a deal that does not exist, ...) is reported
    with its line, and nothing is imported; with skip_invalid the events are then appended in
    batches instead, and the refused ones reported one by one. An import that is interrupted
    writes nothing; running it again imports the file (events whose idempotency key is stored
    count as already present). progress(n) says that n lines have been read. A large file is
    parsed by `workers` processes (by default one per core), block_lines lines at a time (see
    event_file.parsed_blocks).
    """
    report = ImportReport()
    lines = array("q")  # the line of every event staged, in order: the import's positions

    def chunks() -> Iterator[pa.Table]:
        report.rejected.clear()
        del lines[:]
        for block in parsed_blocks(path, workers=workers, block_lines=block_lines):
            report.lines = block.last_line
            report.rejected.extend(block.rejected)
            if block.staged is not None and (skip_invalid or not report.rejected):
                lines.extend(block.event_lines)  # else nothing will be written
                yield block.staged
            if progress:
                progress(block.last_line)
        if report.rejected and not skip_invalid:
            raise _InvalidLines

    try:
        result = store.import_chunks(chunks)
    except _InvalidLines:
        return report
    except ImportRefusedError as exc:
        refused = Rejected(lines[exc.position], printable(str(exc.error)))
        if not skip_invalid:
            report.rejected.append(refused)
            return report
        return _append_in_batches(store, path, progress)
    report.new = result.imported
    report.present = result.duplicates
    report.written = result.imported > 0
    return report


def _append_in_batches(
    store: EventStore, path: Path, progress: Callable[[int], None] | None
) -> ImportReport:
    """--skip-invalid when the log refuses some events: append the valid lines in batches, each
    in one transaction, and find the refused events of a failing batch one by one."""
    report = ImportReport()
    batch: list[NewEvent] = []
    lines_of: dict[object, int] = {}

    def flush() -> None:
        try:
            result = store.append(batch)
        except StoreError:
            for event in batch:  # find the culprits one by one; keep the rest
                try:
                    one = store.append([event])
                except StoreError as exc:
                    reason = printable(str(exc))
                    report.rejected.append(Rejected(lines_of[event.event_id], reason))
                    continue
                report.new += len(one.recorded)
                report.present += len(one.duplicates)
        else:
            report.new += len(result.recorded)
            report.present += len(result.duplicates)
        if progress:
            progress(report.lines)
        batch.clear()
        lines_of.clear()

    for number, item in read_events(path):
        report.lines = number
        if isinstance(item, Rejected):
            report.rejected.append(item)
            continue
        batch.append(item)
        lines_of[item.event_id] = number
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    report.rejected.sort(key=lambda r: r.line)
    report.written = report.new > 0
    return report


def export_events(store: EventStore, directory: Path, *, by_month: bool = False) -> dict[str, Path]:
    """Write the log as events.jsonl (the import format, with seq and recorded_at) and Parquet:
    one file, or with by_month a Hive-partitioned dataset events/month=YYYY-MM/."""
    directory.mkdir(parents=True, exist_ok=True)
    jsonl = directory / "events.jsonl"
    tmp = jsonl.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for event in store.read_all():
            fh.write(json.dumps(event.to_json_dict(), ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
    tmp.replace(jsonl)
    if by_month:
        parquet = directory / "events"
        store.cursor().execute(EXPORT_PARQUET_BY_MONTH, {"path": str(parquet)})
    else:
        parquet = directory / "events.parquet"
        store.cursor().execute(EXPORT_PARQUET, {"path": str(parquet)})
    return {"jsonl": jsonl, "parquet": parquet}
