"""Import and export of the log: the project's event JSONL in, JSONL and Parquet out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from events.envelope import NewEvent
from events.errors import DomainError
from store.errors import StoreError
from store.log import EventStore

IMPORT_BATCH = 5_000
EXPORT_PARQUET = "COPY (SELECT * FROM events ORDER BY seq) TO $path (FORMAT parquet)"
# Hive-style month partitions (month=YYYY-MM/...parquet) by valid time: what Spark, Trino,
# pandas and duckdb read as one partitioned dataset when the log outgrows one machine.
EXPORT_PARQUET_BY_MONTH = (
    "COPY (SELECT *, strftime(occurred_at, '%Y-%m') AS month FROM events ORDER BY seq) "
    "TO $path (FORMAT parquet, PARTITION_BY (month), OVERWRITE_OR_IGNORE true)"
)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did: events new, already present, and lines rejected (with reasons)."""

    new: int = 0
    present: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    lines: int = 0
    written: bool = False


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return str(exc)


def read_events(path: Path) -> Iterator[tuple[int, NewEvent | Rejected]]:
    """Each non-blank line of a JSONL file as an event, or the reason it is not one."""
    with path.open("r", encoding="utf-8", errors="strict") as fh:
        number = 0
        while True:
            try:
                line = fh.readline()
            except UnicodeDecodeError as exc:
                yield number + 1, Rejected(number + 1, f"not UTF-8 text: {exc.reason}")
                return
            if not line:
                return
            number += 1
            if not line.strip():
                continue
            try:
                yield number, NewEvent.from_json_dict(json.loads(line))
            except json.JSONDecodeError as exc:
                yield number, Rejected(number, f"not JSON: {exc.msg} at column {exc.colno}")
            except (ValidationError, DomainError, ValueError, TypeError) as exc:
                yield number, Rejected(number, _reason(exc))


def import_events(
    store: EventStore,
    path: Path,
    *,
    skip_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import a JSONL file of events.

    The file is checked whole first: with any invalid line nothing is imported, unless
    skip_invalid is set. Events are then appended in batches, each in one transaction, so an
    interrupted import leaves whole batches only, and running it again completes it (every
    event has an idempotency key) with no duplicate.
    """
    report = ImportReport()
    for number, item in read_events(path):
        report.lines = number
        if isinstance(item, Rejected):
            report.rejected.append(item)
    if report.rejected and not skip_invalid:
        return report
    batch: list[NewEvent] = []

    def flush() -> None:
        try:
            result = store.append(batch)
        except StoreError:
            if not skip_invalid:
                raise
            for event in batch:  # find the culprits one by one; keep the rest
                try:
                    one = store.append([event])
                except StoreError as exc:
                    report.rejected.append(Rejected(lines_of[event.event_id], str(exc)))
                    continue
                report.new += len(one.recorded)
                report.present += len(one.duplicates)
        else:
            report.new += len(result.recorded)
            report.present += len(result.duplicates)
        if progress:
            progress(len(batch))
        batch.clear()
        lines_of.clear()

    lines_of: dict[object, int] = {}
    for number, item in read_events(path):
        if isinstance(item, Rejected):
            continue
        batch.append(item)
        lines_of[item.event_id] = number
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
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
