"""Answers of read-only commands, kept while the log is unchanged and shared while being read.

A crowd asking the same few questions at once (fifty /position over ten labs) would otherwise
queue fifty reads of DuckDB on a few threads. The key of an answer is the command, its parsed
options and the log's head (the seq of the last event appended): any append moves the head, so
the next question misses and is read anew, and an unchanged log answers a repeated question
without touching the store. Identical questions that arrive while one read is running await it
instead of queueing reads of their own.

Only commands whose answer depends on nothing but the log, the parsed options and the bundled
party registry are kept (CACHEABLE): not /review (a private list), not /digest (its default
week and whether a week is over follow the clock), not /alert (per user). A private answer is
never kept, whatever its command.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.answers import Answer

# The commands whose answers are a function of (options, log head) alone.
CACHEABLE = frozenset(
    {"position", "compare", "leaderboard", "explain", "deals", "deal", "labs", "coverage", "help"}
)
DEFAULT_SIZE = 256

Key = tuple[str, tuple[tuple[str, Hashable], ...], int]
T = TypeVar("T")


def _frozen(value: Any) -> Hashable:
    """A hashable form of a parsed option value (lists of labs become tuples; order kept,
    since /compare's first lab is the one the ratios divide by)."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    return value  # type: ignore[no-any-return]


def answer_key(command: str, values: Mapping[str, Any], head: int) -> Key | None:
    """The key of a command's answer, or None when the command's answers are not kept."""
    if command not in CACHEABLE:
        return None
    return command, tuple(sorted((k, _frozen(v)) for k, v in values.items())), head


@dataclass
class _Kept:
    answer: Answer
    # What surfaces make of the answer (its embeds, its page count, its chart), made once.
    derived: dict[Hashable, Any] = field(default_factory=dict)
    making: dict[Hashable, asyncio.Future[Any]] = field(default_factory=dict)


@dataclass
class CacheStats:
    hits: int = 0  # answered from a kept answer
    shared: int = 0  # awaited a read of the same question already running
    reads: int = 0  # computed (the store was read)
    made: int = 0  # things made off the loop from kept answers (charts), once each


class AnswerCache:
    """A small LRU of answers plus the reads in flight, both by key (answer_key).

    The kept answers are guarded by a lock (any thread may look one up); reads in flight are
    asyncio tasks of the loop that started them, so get_or_read runs on that loop only.
    size 0 turns both off: every question is read on its own.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = max(0, size)
        self.stats = CacheStats()
        self._kept: OrderedDict[Key, _Kept] = OrderedDict()
        self._keys: dict[int, Key] = {}  # id of a kept answer -> its key (see derived)
        self._running: dict[Key, asyncio.Future[Answer]] = {}
        self._head = 0  # the newest log head of a kept answer
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Key | None) -> Answer | None:
        """The kept answer of the key (now the most recently used), or None."""
        if key is None or not self.size:
            return None
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            self._kept.move_to_end(key)
            self.stats.hits += 1
            return kept.answer

    def put(self, key: Key, answer: Answer) -> None:
        if answer.ephemeral or not self.size:  # a private answer (or an error) is not shared
            return
        head = key[2]
        with self._lock:
            if head < self._head:  # the log moved on while this was read: no one asks it again
                return
            if head > self._head:  # answers of older heads can no longer be asked for
                self._head = head
                for old in [k for k in self._kept if k[2] < head]:
                    self._forget(self._kept.pop(old))
            self._forget(self._kept.pop(key, None))
            self._kept[key] = _Kept(answer)
            self._keys[id(answer)] = key
            while len(self._kept) > self.size:
                self._forget(self._kept.popitem(last=False)[1])

    def _forget(self, kept: _Kept | None) -> None:
        if kept is not None:
            self._keys.pop(id(kept.answer), None)

    def _entry(self, answer: Answer) -> _Kept | None:
        """The entry of a kept answer (this very object), under the lock."""
        key = self._keys.get(id(answer))
        kept = self._kept.get(key) if key is not None else None
        return kept if kept is not None and kept.answer is answer else None

    def derived_ready(self, answer: Answer, name: Hashable) -> Any | None:
        """What was made of a kept answer under `name` already, or None."""
        with self._lock:
            kept = self._entry(answer)
            return None if kept is None else kept.derived.get(name)

    def derived(self, answer: Answer, name: Hashable, make: Callable[[Answer], T]) -> T:
        """make(answer), made once while the answer is kept (its rendering, say), else each
        time. What is returned is shared: callers must not change it."""
        with self._lock:
            kept = self._entry(answer)
            if kept is not None and name in kept.derived:
                return kept.derived[name]  # type: ignore[no-any-return]
        value = make(answer)
        if kept is not None:
            with self._lock:
                kept.derived[name] = value
        return value

    async def derived_async(
        self, answer: Answer, name: Hashable, make: Callable[[Answer], Awaitable[T]]
    ) -> T:
        """derived() for what is made off the loop (a chart): callers at once await the same
        making; a failure is not kept (the next caller tries again)."""
        with self._lock:
            kept = self._entry(answer)
            if kept is not None and name in kept.derived:
                return kept.derived[name]  # type: ignore[no-any-return]
        if kept is None:
            return await make(answer)
        making = kept.making.get(name)
        if making is None:
            self.stats.made += 1
            making = asyncio.ensure_future(make(answer))
            kept.making[name] = making
            making.add_done_callback(functools.partial(self._made, kept, name))
        return await asyncio.shield(making)  # type: ignore[no-any-return]

    def _made(self, kept: _Kept, name: Hashable, making: asyncio.Future[Any]) -> None:
        kept.making.pop(name, None)
        if not making.cancelled() and making.exception() is None:
            with self._lock:
                kept.derived[name] = making.result()

    async def get_or_read(self, key: Key | None, read: Callable[[], Awaitable[Answer]]) -> Answer:
        """The kept answer, or the result of the read already running for the key, or of a new
        `read()`. A caller that is cancelled leaves the read running for the others."""
        if key is None or not self.size:
            self.stats.reads += 1
            return await read()
        kept = self.get(key)
        if kept is not None:
            return kept
        running = self._running.get(key)
        if running is None:
            self.stats.reads += 1
            running = asyncio.ensure_future(read())
            self._running[key] = running
            running.add_done_callback(functools.partial(self._finished, key))
        else:
            self.stats.shared += 1
        return await asyncio.shield(running)

    def _finished(self, key: Key, read: asyncio.Future[Answer]) -> None:
        self._running.pop(key, None)
        # exception() also marks a failure as seen when every caller had gone away.
        if not read.cancelled() and read.exception() is None:
            self.put(key, read.result())

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._keys.clear()
