"""Read-only SQL in the writer's process, over a checkpointed copy of the database file.

Why a copy: DuckDB refuses a second, differently configured open of a file this process already
holds, and the writer's instance cannot be locked down for the sandbox (export needs COPY ... TO,
which `enable_external_access = false` forbids). So the sandbox reads a snapshot file instead:
under the store's write lock we CHECKPOINT (the WAL is folded into the main file), then copy the
file while appends go on into the WAL (see SnapshotSql._copy); the copy is opened read-only and
atomically renamed to
`<db>.snapshot.duckdb`, which other processes may open read-only too.

DuckDB limitation met here (DuckDB 2.0): connections are cached per path inside a process, so
opening `<db>.snapshot.duckdb` again while an older snapshot is still open there returns the *old*
instance, stale data and all. Each generation is therefore opened under its unique temporary name
*before* the rename; the open file keeps working after the rename (POSIX), and the old generation
is closed when its last running query ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import duckdb

from store.errors import StoreError
from store.log import EventStore
from store.sandbox import QueryResult, SqlSandbox
from store.settings import DuckDBSettings

log = logging.getLogger(__name__)

CHECKPOINT = "CHECKPOINT"
SELECT_SNAPSHOT_HEAD = "SELECT coalesce(max(seq), 0) AS head FROM events"
SNAPSHOT_SUFFIX = ".snapshot.duckdb"
_TMP_MARK = ".tmp-"
_COPY_CHUNK = 8 << 20
# DuckDB's file starts with its main header and two database headers (4 KiB each); a
# checkpoint writes one of the database headers. Unchanged after a copy: no checkpoint happened.
_HEADERS_BYTES = 3 * 4096
# While a snapshot is copied: no automatic checkpoint at any WAL size (DuckDB checkpoints at a
# commit that makes the WAL large, or instead of logging a large commit).
_NO_AUTOMATIC_CHECKPOINT = {
    "checkpoint_threshold": "1000TB",
    "auto_checkpoint_skip_wal_threshold": str(2**62),
}

# POSIX record locks, DuckDB's guard against a second writer, belong to the process and are all
# released when it closes *any* descriptor of the file: a copy that opened and closed the file
# by name gave the lock away. So the file is read through one descriptor per store, closed only
# when the store object is garbage-collected (tests/integration/test_single_writer.py).
_SOURCES: weakref.WeakKeyDictionary[EventStore, int] = weakref.WeakKeyDictionary()
_SOURCES_LOCK = threading.Lock()


def snapshot_path_for(db: Path) -> Path:
    """Where the snapshot of `db` lives: beside it, `<db>.snapshot.duckdb`."""
    return db.with_name(db.name + SNAPSHOT_SUFFIX)


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """A sandboxed query's result and the log position (seq) of the snapshot that answered it."""

    result: QueryResult
    snapshot_seq: int


class _Generation:
    """One opened snapshot file; closed once it is replaced and no query uses it any more."""

    def __init__(self, sandbox: SqlSandbox, head: int) -> None:
        self.sandbox = sandbox
        self.head = head
        self.users = 0
        self.retired = False


class SnapshotSql:
    """Sandboxed read-only SQL over a snapshot of the store; thread-safe.

    `refresh()` brings the snapshot up to the store's head; `run()` answers from the current
    snapshot, refreshing it first when the log has moved on (so a reader sees its own writes).
    The snapshot costs a copy of the database file on disk and, per refresh, a checkpoint (which
    appends wait for) and a copy of the file (which they do not).
    """

    def __init__(
        self,
        store: EventStore,
        path: Path | None = None,
        *,
        timeout_s: float = 5.0,
        max_rows: int = 1000,
        memory_limit: str = "512MB",
    ) -> None:
        self.store = store
        self.path = path or snapshot_path_for(store.path)
        self._timeout_s = timeout_s
        self._max_rows = max_rows
        self._memory_limit = memory_limit
        self._current: _Generation | None = None
        self._lock = threading.Lock()  # guards _current and the generations' user counts
        self._refresh_lock = threading.Lock()  # one refresh at a time; waiters reuse its work
        self._names = count(1)
        self._closed = False
        self._swept = False

    @property
    def head(self) -> int:
        """The seq of the last event in the current snapshot (-1 before the first refresh)."""
        current = self._current
        return -1 if current is None else current.head

    def refresh(self) -> int:
        """Make a snapshot of the store as it is now (unless one is already current); its seq."""
        with self._refresh_lock:
            if self._closed:
                raise StoreError("the SQL snapshot is closed")
            if self.head == self.store.head:
                return self.head
            if not self._swept:
                self._remove_leftovers()
                self._swept = True
            name = f"{self.path.name}{_TMP_MARK}{os.getpid()}-{next(self._names)}"
            tmp = self.path.with_name(name)
            try:
                expected = self._copy(tmp)
                sandbox = SqlSandbox(
                    tmp,
                    timeout_s=self._timeout_s,
                    max_rows=self._max_rows,
                    memory_limit=self._memory_limit,
                )
            except (OSError, duckdb.Error) as exc:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"cannot make the SQL snapshot {self.path}: {exc}") from exc
            try:
                head = int(sandbox.run(SELECT_SNAPSHOT_HEAD).rows[0][0] or 0)  # type: ignore[arg-type]
                os.replace(tmp, self.path)
            except (OSError, StoreError) as exc:
                sandbox.close()
                tmp.unlink(missing_ok=True)
                raise StoreError(f"cannot make the SQL snapshot {self.path}: {exc}") from exc
            if head != expected:
                # Consistent, but as of an earlier checkpoint; the next refresh will catch up.
                log.warning("SQL snapshot is at seq %d, the log at %d", head, expected)
            self._install(_Generation(sandbox, head))
            return head

    def run(self, sql: str) -> SnapshotResult:
        """Answer one read-only query from a current snapshot; raises SqlSandboxError subclasses."""
        if self.head != self.store.head:
            self.refresh()
        generation = self._acquire()
        try:
            return SnapshotResult(generation.sandbox.run(sql), generation.head)
        finally:
            self._release(generation)

    def close(self) -> None:
        """Close the open snapshot; the snapshot file stays for other processes to read."""
        with self._refresh_lock, self._lock:
            self._closed = True
            current, self._current = self._current, None
            if current is not None:
                current.retired = True
                if current.users == 0:
                    current.sandbox.close()

    def __enter__(self) -> SnapshotSql:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _copy(self, tmp: Path) -> int:
        """Copy the store's file as of a checkpoint made now; the seq it holds.

        Appends wait only for the checkpoint: while the file is copied they commit into the
        WAL, because DuckDB changes the database file only when it checkpoints (blocks a large
        insert writes ahead of its commit are blocks that the checkpointed state does not use,
        as a crash must find them) and automatic checkpoints are held off meanwhile. Should a
        checkpoint happen anyway (the store closing), the file's headers change: the copy is
        then made again with appends waiting."""
        fd = _source_descriptor(self.store)
        with self.store._write_lock:  # noqa: SLF001 - store-internal: the writer's own lock
            self.store.cursor().execute(CHECKPOINT)  # (the read models catch up first)
            expected = self.store.head
            headers = os.pread(fd, _HEADERS_BYTES, 0)
            held = DuckDBSettings(self.store.cursor())
            for name, value in _NO_AUTOMATIC_CHECKPOINT.items():
                held.set(name, value)
        try:
            _copy_open_file(fd, tmp)
        finally:
            held.restore()
        if os.pread(fd, _HEADERS_BYTES, 0) == headers:
            return expected
        log.info("the database checkpointed while the SQL snapshot was copied; copying again")
        with self.store._write_lock:  # noqa: SLF001
            self.store.cursor().execute(CHECKPOINT)
            expected = self.store.head
            _copy_open_file(fd, tmp)
        return expected

    def _install(self, generation: _Generation) -> None:
        with self._lock:
            old, self._current = self._current, generation
            if old is not None:
                old.retired = True
                if old.users == 0:
                    old.sandbox.close()

    def _acquire(self) -> _Generation:
        with self._lock:
            if self._current is None:
                raise StoreError("the SQL snapshot is not available")
            self._current.users += 1
            return self._current

    def _release(self, generation: _Generation) -> None:
        with self._lock:
            generation.users -= 1
            if generation.retired and generation.users == 0:
                generation.sandbox.close()

    def _remove_leftovers(self) -> None:
        """Temporary copies left by a crash of this or an earlier process."""
        for leftover in self.path.parent.glob(f"{self.path.name}{_TMP_MARK}*"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _source_descriptor(store: EventStore) -> int:
    """A read-only descriptor of the store's file that stays open while the store lives."""
    with _SOURCES_LOCK:
        fd = _SOURCES.get(store)
        if fd is None:
            fd = os.open(store.path, os.O_RDONLY)
            _SOURCES[store] = fd
            weakref.finalize(store, os.close, fd)
        return fd


def _copy_open_file(fd: int, target: Path) -> None:
    """Copy the whole file behind `fd` to `target`, by offset, without closing `fd`."""
    size = os.fstat(fd).st_size
    with target.open("wb") as out:
        offset = 0
        while offset < size:
            n = min(_COPY_CHUNK, size - offset)
            if hasattr(os, "copy_file_range"):  # Linux: in the kernel, no copy through Python
                done = os.copy_file_range(fd, out.fileno(), n, offset)
            else:
                done = out.write(os.pread(fd, n, offset))
            if done == 0:
                break  # the file shrank meanwhile (cannot happen under the write lock)
            offset += done
