"""The async facade: appends go to one writer thread, so the event loop never waits on DuckDB."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

from events.envelope import NewEvent
from store.errors import StoreError
from store.log import AppendResult, EventStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# How many events one commit may carry: large enough that 50 concurrent single appends share a
# commit (one DuckDB commit costs 2-3 ms), small enough that a huge batch does not starve others.
MAX_EVENTS_PER_COMMIT = 5_000
_STOP = object()


class AsyncEventStore:
    """Appends go through one writer thread that commits what is waiting together; reads run in
    worker threads. Use `async with` or call `start()` / `aclose()`."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.commits = 0  # for benchmarks and tests: how many group commits were made

    def start(self) -> None:
        if self._thread is None:
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
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def append(self, events: Sequence[NewEvent]) -> AppendResult:
        """Append one batch atomically (see EventStore.append); raises its StoreError."""
        if self._thread is None:
            raise StoreError("the writer is not running")
        future: Future[AppendResult] = Future()
        self._queue.put((list(events), future))
        return await asyncio.wrap_future(future)

    async def read(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        """Run a read of the store in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            waiting = [item]
            size = len(item[0])  # type: ignore[index]
            # Take whatever else is already waiting: that is the group commit.
            while size < MAX_EVENTS_PER_COMMIT:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                waiting.append(nxt)
                size += len(nxt[0])  # type: ignore[index]
            self._commit(waiting)  # type: ignore[arg-type]

    def _commit(self, waiting: list[tuple[list[NewEvent], Future[AppendResult]]]) -> None:
        try:
            results = self.store.append_many([batch for batch, _ in waiting])
            self.commits += 1
        except Exception:  # noqa: BLE001 - a failed group is retried batch by batch below
            log.warning("group commit of %d batches failed; retrying one by one", len(waiting))
            results = []
            for batch, _ in waiting:
                try:
                    results.append(self.store.append(batch))
                except StoreError as exc:
                    results.append(exc)
                except Exception as exc:  # noqa: BLE001 - handed to the caller, not lost
                    results.append(exc)  # type: ignore[arg-type]
        for (_, future), result in zip(waiting, results, strict=True):
            if future.cancelled():
                continue  # the caller stopped waiting; what was written stays written
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
