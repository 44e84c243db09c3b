"""Reading the project's event JSONL: each line validated as an event, or the reason it is not
one; for an import, the events staged as Arrow chunks, parsed in worker processes when the file
is large.

Validating an event (json, then pydantic, then the typed columns) is Python work of ~50 us a
line: it was 85 % of a 1M-line `computewatch import`, on one core. The file is still read here,
line by line in order, so line numbers and the handling of blank lines, byte order marks,
newlines and bytes that are not UTF-8 are the same whether the lines are parsed here or by the
workers; only the parsing moves.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from pydantic import ValidationError

from events.envelope import NewEvent
from events.errors import DomainError
from store.rows import stage_events

log = logging.getLogger(__name__)

# Lines parsed and staged together (one chunk of the import; one task of a worker).
BLOCK_LINES = 20_000
# Below this size a file is parsed in this process: starting the workers (each imports the
# event models) costs about a second.
PARALLEL_MIN_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


# Numbered non-blank lines of the file (a Rejected where the text stopped being UTF-8).
Lines = list[tuple[int, "str | Rejected"]]


@dataclass
class Block:
    """Lines of the file, parsed: the events staged (None when there are none), the line of
    each event, the lines rejected, and the last line number the block covers."""

    staged: pa.Table | None
    event_lines: list[int]
    rejected: list[Rejected] = field(default_factory=list)
    last_line: int = 0


def read_events(path: Path) -> Iterator[tuple[int, NewEvent | Rejected]]:
    """Each non-blank line of a JSONL file as an event, or the reason it is not one."""
    for number, line in numbered_lines(path):
        yield number, line if isinstance(line, Rejected) else parse_line(number, line)


def numbered_lines(path: Path) -> Iterator[tuple[int, str | Rejected]]:
    """Each non-blank line with its number; text that is not UTF-8 ends the file with a
    Rejected (what follows cannot be trusted to be lines)."""
    # utf-8-sig: a byte order mark (as some Windows editors save) is not part of the first line.
    with path.open("r", encoding="utf-8-sig", errors="strict") as fh:
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
            if line.strip():
                yield number, line


def parse_line(number: int, line: str) -> NewEvent | Rejected:
    try:
        return NewEvent.from_json_dict(json.loads(line))
    except json.JSONDecodeError as exc:
        return Rejected(number, f"not JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:  # json.loads recurses once per [ or {
        return Rejected(number, "nested too deeply (more than ~900 [ or { levels)")
    except (ValidationError, DomainError, ValueError, TypeError) as exc:
        return Rejected(number, reason_of(exc))


def reason_of(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return printable(f"{where}: {first['msg']}{more}")
    return printable(str(exc))


def printable(text: str) -> str:
    """Reasons quote keys and values of the file: escape control characters (a terminal would
    obey them) and lone surrogates (which no terminal can print)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def parse_block(lines: Lines) -> Block:
    """Parse and stage a block of numbered lines (in a worker process, or here)."""
    events: list[NewEvent] = []
    block = Block(None, [], last_line=lines[-1][0] if lines else 0)
    for number, line in lines:
        item = line if isinstance(line, Rejected) else parse_line(number, line)
        if isinstance(item, Rejected):
            block.rejected.append(item)
        else:
            events.append(item)
            block.event_lines.append(number)
    block.staged = stage_events(events) if events else None
    return block


def parsed_blocks(
    path: Path, *, workers: int | None = None, block_lines: int = BLOCK_LINES
) -> Iterator[Block]:
    """The file's lines parsed and staged, block_lines at a time, in file order. A large file
    is parsed by worker processes, a few blocks ahead of the caller (so memory stays bounded);
    workers=1 (the default for a small file, or on one core) parses here."""
    if workers is None:
        workers = _default_workers(path)
    blocks = _line_blocks(path, block_lines)
    if workers <= 1:
        yield from map(parse_block, blocks)
        return
    # spawn: a forked child would inherit the parent's DuckDB threads and locks mid-use.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with_parent) as pool:
        pending: deque[tuple[Lines, Future[Block]]] = deque()
        broken = False
        for lines in blocks:
            if broken:
                yield parse_block(lines)
                continue
            pending.append((lines, _submit(pool, lines)))
            while len(pending) > workers or (pending and pending[0][1].done()):
                block, broken = _result(*pending.popleft())
                yield block
                if broken:  # the blocks sent are parsed here again, and the rest too
                    yield from (parse_block(held) for held, _ in pending)
                    pending.clear()
        while pending:
            block, broken = _result(*pending.popleft())
            yield block


def _exit_with_parent() -> None:
    """In a worker: exit as soon as the importing process is gone (a killed import would
    otherwise leave its workers behind, waiting forever for work)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="computewatch-parent-watch", daemon=True).start()


def _submit(pool: ProcessPoolExecutor, lines: Lines) -> Future[Block]:
    """The block sent to a worker; a future that failed as a broken pool would if no worker
    can be started (no process or semaphore to be had, say)."""
    try:
        return pool.submit(parse_block, lines)
    except (OSError, RuntimeError) as exc:  # BrokenProcessPool is a RuntimeError too
        failed: Future[Block] = Future()
        failed.set_exception(BrokenProcessPool(f"no parsing worker could start: {exc}"))
        return failed


def _result(lines: Lines, future: Future[Block]) -> tuple[Block, bool]:
    """A worker's block, or (when the workers could not start or died) the block parsed here;
    and whether the pool is broken."""
    try:
        return future.result(), False
    except BrokenProcessPool as exc:
        # A script without the `if __name__ == "__main__":` guard cannot start spawned workers.
        log.warning("%s; parsing the rest of the file in this process", exc)
        return parse_block(lines), True


def _line_blocks(path: Path, size: int) -> Iterator[Lines]:
    block: Lines = []
    for item in numbered_lines(path):
        block.append(item)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block


def _default_workers(path: Path) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or path.stat().st_size < PARALLEL_MIN_BYTES:
        return 1
    return cores or 1
