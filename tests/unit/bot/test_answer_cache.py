"""The answer cache on its own: keys, the LRU bound, reads shared while in flight, what is never
kept (private answers, failures), and what a caller that goes away leaves behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.answer_cache import CACHEABLE, AnswerCache, answer_key
from bot.answers import Answer
from bot.errors import UserInputError


def answer(title: str, *, ephemeral: bool = False) -> Answer:
    return Answer(command="position", title=title, ephemeral=ephemeral)


class Reads:
    """A read that counts its calls and can be held until released."""

    def __init__(self, result: Answer | Exception) -> None:
        self.result = result
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> Answer:
        self.calls += 1
        await self.release.wait()
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_the_key_follows_the_command_its_options_and_the_log_head() -> None:
    day = datetime(2025, 12, 31, tzinfo=UTC)
    key = answer_key("compare", {"labs": ["openai", "xai"], "as_of": day, "known_at": None}, 7)

    assert key == answer_key(
        "compare", {"known_at": None, "as_of": day, "labs": ["openai", "xai"]}, 7
    )
    assert key != answer_key(
        "compare", {"labs": ["xai", "openai"], "as_of": day, "known_at": None}, 7
    )
    assert key != answer_key(
        "compare", {"labs": ["openai", "xai"], "as_of": day, "known_at": None}, 8
    )
    assert key != answer_key(
        "compare", {"labs": ["openai", "xai"], "as_of": None, "known_at": None}, 7
    )
    hash(key)


def test_only_read_only_questions_have_a_key() -> None:
    assert answer_key("review", {"page": 1}, 3) is None  # a private list
    assert answer_key("digest", {"week": None}, 3) is None  # its default week follows the clock
    assert answer_key("alert", {}, 3) is None
    assert {"position", "compare", "leaderboard", "deals"} <= CACHEABLE


async def test_a_kept_answer_is_returned_without_reading_again() -> None:
    cache = AnswerCache(8)
    key = answer_key("position", {"lab": "xai"}, 1)
    read = Reads(answer("xAI"))

    first = await cache.get_or_read(key, read)
    second = await cache.get_or_read(key, read)

    assert first is second
    assert read.calls == 1
    assert (cache.stats.reads, cache.stats.hits) == (1, 1)


async def test_identical_questions_at_once_share_one_read() -> None:
    cache = AnswerCache(8)
    key = answer_key("position", {"lab": "xai"}, 1)
    read = Reads(answer("xAI"))
    read.release.clear()

    waiting = [asyncio.ensure_future(cache.get_or_read(key, read)) for _ in range(50)]
    await asyncio.sleep(0)
    read.release.set()
    answers = await asyncio.gather(*waiting)

    assert read.calls == 1
    assert all(a is answers[0] for a in answers)
    assert (cache.stats.reads, cache.stats.shared) == (1, 49)


async def test_the_cache_holds_at_most_its_size_dropping_the_least_recently_used() -> None:
    cache = AnswerCache(2)
    keys = [answer_key("position", {"lab": lab}, 1) for lab in ("a", "b", "c")]
    await cache.get_or_read(keys[0], Reads(answer("a")))
    await cache.get_or_read(keys[1], Reads(answer("b")))
    assert cache.get(keys[0]) is not None  # "a" is now the most recently used

    await cache.get_or_read(keys[2], Reads(answer("c")))

    assert len(cache) == 2
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) is not None and cache.get(keys[2]) is not None


async def test_private_answers_and_failures_are_never_kept() -> None:
    cache = AnswerCache(8)
    private_key = answer_key("position", {"lab": "a"}, 1)
    failing_key = answer_key("position", {"lab": "b"}, 1)
    private = Reads(answer("mine", ephemeral=True))
    failing = Reads(UserInputError("page 3 is past the last page (2)"))

    await cache.get_or_read(private_key, private)
    await cache.get_or_read(private_key, private)
    for _ in range(2):
        with pytest.raises(UserInputError):
            await cache.get_or_read(failing_key, failing)

    assert private.calls == 2
    assert failing.calls == 2
    assert len(cache) == 0


async def test_a_caller_that_goes_away_leaves_the_read_to_the_others() -> None:
    cache = AnswerCache(8)
    key = answer_key("position", {"lab": "xai"}, 1)
    read = Reads(answer("xAI"))
    read.release.clear()
    first = asyncio.ensure_future(cache.get_or_read(key, read))
    second = asyncio.ensure_future(cache.get_or_read(key, read))
    await asyncio.sleep(0)

    first.cancel()
    read.release.set()

    assert (await second).title == "xAI"
    assert first.cancelled()
    assert cache.get(key) is not None  # kept for the next question too


async def test_size_zero_reads_every_question_on_its_own() -> None:
    cache = AnswerCache(0)
    key = answer_key("position", {"lab": "xai"}, 1)
    read = Reads(answer("xAI"))

    await asyncio.gather(*(cache.get_or_read(key, read) for _ in range(3)))

    assert read.calls == 3
    assert len(cache) == 0


async def test_what_is_made_of_a_kept_answer_is_made_once() -> None:
    cache = AnswerCache(8)
    key = answer_key("position", {"lab": "xai"}, 1)
    kept = await cache.get_or_read(key, Reads(answer("xAI")))
    loose = answer("not kept")
    made: list[str] = []

    def render(a: Answer) -> str:
        made.append(a.title)
        return a.title.upper()

    assert cache.derived(kept, "title", render) == "XAI"
    assert cache.derived(kept, "title", render) == "XAI"
    assert cache.derived(loose, "title", render) == "NOT KEPT"
    assert cache.derived(loose, "title", render) == "NOT KEPT"
    assert made == ["xAI", "not kept", "not kept"]


async def test_what_is_made_off_the_loop_is_shared_and_a_failure_is_tried_again() -> None:
    cache = AnswerCache(8)
    kept = await cache.get_or_read(answer_key("position", {"lab": "xai"}, 1), Reads(answer("x")))
    calls: list[str] = []
    gate = asyncio.Event()

    async def draw(a: Answer) -> bytes:
        calls.append(a.title)
        await gate.wait()
        if len(calls) == 1:
            raise RuntimeError("matplotlib failed")
        return b"png"

    failing = [asyncio.ensure_future(cache.derived_async(kept, "chart", draw)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert cache.derived_ready(kept, "chart") is None

    assert await cache.derived_async(kept, "chart", draw) == b"png"
    assert await cache.derived_async(kept, "chart", draw) == b"png"
    assert cache.derived_ready(kept, "chart") == b"png"
    assert calls == ["x", "x"]


async def test_answers_of_an_older_log_head_are_dropped_and_not_kept_late() -> None:
    cache = AnswerCache(8)
    old = answer_key("position", {"lab": "xai"}, 1)
    other_old = answer_key("position", {"lab": "meta"}, 1)
    new = answer_key("position", {"lab": "xai"}, 2)
    await cache.get_or_read(old, Reads(answer("xAI at 1")))
    slow = Reads(answer("meta at 1"))
    slow.release.clear()
    late = asyncio.ensure_future(cache.get_or_read(other_old, slow))
    await asyncio.sleep(0)

    await cache.get_or_read(new, Reads(answer("xAI at 2")))
    slow.release.set()

    assert (await late).title == "meta at 1"  # its caller still gets what it asked for
    assert cache.get(old) is None and cache.get(other_old) is None
    assert len(cache) == 1
