"""The async facade: appends go to one writer thread, so the event loop never waits on DuckDB."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from events.envelope import NewEvent
from store.errors import StoreError
from store.log import AppendResult, EventStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# How many events one commit may carry: large enough that 50 concurrent single appends share a
# commit (one DuckDB commit costs 2-3 ms), small enough that a huge batch does not starve others.
MAX_EVENTS_PER_COMMIT = 5_000
# The writer catches the read models up once no append has come for this long: under a stream
# of appends they are folded in large batches (or by the first read), not after every commit.
IDLE_CATCH_UP_S = 0.02
# When the last commit carried several callers' appends, the writer waits this long at most for
# as many to gather again: their callers are busy making their next events, and a commit
# shared by more of them costs about the same as one shared by fewer. A lone appender (the last
# commit had one caller) never waits.
LINGER_S = 0.002
_STOP = object()
# A queued append: its events, the future its caller awaits, and that caller's event loop.
_Waiting = tuple[list[NewEvent], asyncio.Future[AppendResult], asyncio.AbstractEventLoop]


class AsyncEventStore:
    """Appends go through one writer thread that commits what is waiting together; reads run in
    worker threads. Use `async with` or call `start()` / `aclose()`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.commits = 0  # for benchmarks and tests: how many group commits were made
        self._last_group = 1  # how many callers the last commit served
        # Guards the queue's end: no append is queued behind the stop (it would wait forever).
        self._stop_lock = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="computewatch-writer", daemon=True
            )
            self._thread.start()

    async def __aenter__(self) -> AsyncEventStore:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish the pending appends, then stop the writer (the store stays open)."""
        if self._thread is not None:
            with self._stop_lock:
                if not self._stopping:
                    self._stopping = True
                    self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def append(self, events: Sequence[NewEvent]) -> AppendResult:
        """Append one batch atomically (see EventStore.append); raises its StoreError."""
        if self._thread is None:
            raise StoreError("the writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        with self._stop_lock:
            if self._stopping:
                raise StoreError("the writer is stopping; nothing was written")
            self._queue.put((list(events), future, loop))
        return await future

    async def read(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a read of the store in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=IDLE_CATCH_UP_S)
            except queue.Empty:
                self._catch_up()
                item = self._queue.get()
            if item is _STOP:
                break
            waiting = [item]
            size = len(item[0])  # type: ignore[index]
            # Take whatever else is waiting (or, under load, comes within LINGER_S): that is the
            # group commit.
            deadline = time.monotonic() + LINGER_S
            while size < MAX_EVENTS_PER_COMMIT:
                left = deadline - time.monotonic()
                try:
                    if len(waiting) < self._last_group and left > 0:
                        nxt = self._queue.get(timeout=left)
                    else:
                        nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                waiting.append(nxt)
                size += len(nxt[0])  # type: ignore[index]
            self._last_group = len(waiting)
            self._commit(waiting)  # type: ignore[arg-type]

    def _catch_up(self) -> None:
        try:
            self.store.catch_up()
        except Exception:  # noqa: BLE001 - the next read tries again and reports it
            log.exception("the read models did not catch up")

    def _commit(self, waiting: list[_Waiting]) -> None:
        try:
            results = self.store.append_many([batch for batch, _, _ in waiting])
            self.commits += 1
        except Exception:  # noqa: BLE001 - a failed group is retried batch by batch below
            log.warning("group commit of %d batches failed; retrying one by one", len(waiting))
            results = []
            for batch, _, _ in waiting:
                try:
                    results.append(self.store.append(batch))
                except StoreError as exc:
                    results.append(exc)
                except Exception as exc:  # noqa: BLE001 - handed to the caller, not lost
                    results.append(exc)  # type: ignore[arg-type]
        # One wake-up of each event loop for the whole group, not one per caller.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[AppendResult], object]]]
        by_loop = {}
        for (_, future, loop), result in zip(waiting, results, strict=True):
            by_loop.setdefault(loop, []).append((future, result))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop is closed: nobody waits for these any more
                log.warning(
                    "%d appends were written for an event loop that is closed", len(settled)
                )


def _settle(settled: list[tuple[asyncio.Future[AppendResult], object]]) -> None:
    """Hand each caller its result, in its event loop."""
    for future, result in settled:
        if future.done():
            continue  # the caller stopped waiting; what was written stays written
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)  # type: ignore[arg-type]
