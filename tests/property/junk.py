"""Hypothesis strategies for bad input (plausible-but-wrong and arbitrary), and the checks that
every surface's answer to it is a clear message: shared by the tests of tests/property/."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import unicodedata
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

T = TypeVar("T")

# CI runs the same examples every time (HYPOTHESIS_DERANDOMIZE=1); locally each run explores.
DERANDOMIZE = os.environ.get("HYPOTHESIS_DERANDOMIZE", "") not in ("", "0")


# A deeper search on demand: BAD_INPUT_SCALE=10 tries ten times as many inputs per test.
SCALE = max(1, int(os.environ.get("BAD_INPUT_SCALE", "1") or 1))


def bad_input_settings(max_examples: int) -> settings:
    """Per-test settings: no deadline (a 2-core machine shared with other jobs), reused
    fixtures are intended (one server, one store for every example)."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=None,
        derandomize=DERANDOMIZE,
        database=None if DERANDOMIZE else settings.default.database,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


# -- text ------------------------------------------------------------------------------------
# Every code point, lone surrogates and control characters included.
ANY_CHAR = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=30)
NASTY = (
    "",
    " ",
    "\t\n",
    "\x00",
    "\x1b[2J",
    "\ud800",
    "a\udfffb",
    "\u202eevil",
    "\ufeff",
    "\u2028",
    "NaN",
    "nan",
    "-inf",
    "Infinity",
    "1e400",
    "-1",
    "0",
    "-0",
    "1_000",
    "0x10",
    "١٢٣",
    "True",
    "null",
    "None",
    "[]",
    "{}",
    "'",
    '"',
    "''",
    "\\",
    ":",
    "::",
    "a:b:c",
    "deal:",
    "as_of:",
    "--json",
    "; DROP TABLE events; --",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "%s%n%x",
    "../../etc/passwd",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "https://",
    "http://[::1",
    "today",
    "now",
    "2026-02-30",
    "2026-13-01",
    "0000-00-00",
    "0001-01-01",
    "9999-12-31",
    "2026-1-1",
    "20260101",
    "2026-W05",
    "2026-W99",
    "1989-12-31",
    "2201-01-01",
    "2025-12-31T25:61",
    "$20 billion",
    "$-5 billion",
    "1.2 GW",
    "-3 GW",
    "1e308 GW",
    "NaN GW",
    "inf MW",
    "anthropic",
    "Anthropic",
    "AWS",
    "antropic",
    "google:provider",
    "google:landlord:extra",
    "google:",
    ":provider",
    "acme-ai",
)
# Built lazily, so that Hypothesis' reports show the recipe, not 5,000 characters.
LONG_TEXT = st.sampled_from([(c, n) for c in "9a ,([" for n in (300, 5000)]).map(
    lambda cn: cn[0] * cn[1]
)
NASTY_TEXT = st.sampled_from(NASTY) | LONG_TEXT
JUNK_TEXT = st.one_of(
    NASTY_TEXT,
    ANY_TEXT,
    st.text(ANY_CHAR, min_size=200, max_size=3000),
    st.lists(NASTY_TEXT, min_size=2, max_size=5).map(" ".join),
    st.tuples(NASTY_TEXT, ANY_TEXT).map("".join),
)

# -- JSON values -----------------------------------------------------------------------------
HUGE_NUMBERS = st.sampled_from([400, 4000]).map(lambda n: 10**n) | st.sampled_from(
    [2**63, -(2**63) - 1, 2**64, 1e308, -1e308, 5e-324, 0.1 + 0.2, -0.0]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_NUMBERS,
    st.floats(),  # NaN and infinities included: json.dumps writes them as NaN / Infinity
    JUNK_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def deep(depth: int, value: Any = 1) -> Any:
    """A value nested `depth` lists deep (parsers that recurse stop somewhere)."""
    for _ in range(depth):
        value = [value]
    return value


def dumps(value: Any) -> str:
    """JSON text as a careless producer writes it: NaN/Infinity allowed, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True, ensure_ascii=True)


# -- events ----------------------------------------------------------------------------------
EVENT_KEYS = (
    "stream_id",
    "type",
    "schema",
    "occurred_at",
    "actor",
    "source_url",
    "source_title",
    "payload",
    "event_id",
    "idempotency_key",
    "expected_version",
    "seq",
    "version",
    "recorded_at",
)
PAYLOAD_KEYS = (
    "lab",
    "kind",
    "status",
    "counterparties",
    "capacity_mw",
    "value_usd",
    "chips",
    "term_years",
    "online_from",
    "title",
    "summary",
    "date_precision",
    "mw",
    "event_id",
    "reason",
    "relation",
    "other_deal",
    "party",
    "role",
    "capacity_gw",
    "headline",
)
PLAUSIBLE_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(
        [
            "deal:acme-bad-1",
            "deal:Acme Bad",
            "deal:",
            "digest:1",
            "candidate:x",
            "DealReported",
            "DealStatusChanged",
            "DealRetracted",
            "EventRetracted",
            "dealreported",
            "2026-01-11T00:00:00Z",
            "2026-01-11T00:00:00",
            "2026-02-30T00:00:00Z",
            "1900-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "cli",
            "discord:abc",
            "api",
            "https://news.example.com/x",
            "seed:../../etc",
            "openai",
            "antropic",
            "cloud_contract",
            "signed",
            "provider",
            "019ba5a0-0000-7000-8000-000000000001",
            "not-a-uuid",
            "2026-13",
        ]
    ),
    st.just(deep(400)),
    st.lists(
        st.fixed_dictionaries({"party": st.sampled_from(["oracle", "openai", "x", ""])}),
        max_size=3,
    ),
    # Keys that error messages quote back (as a field's location).
    st.sampled_from([{"\x1b[2J": 1}, {"vendor": "nvidia", "\x00": 2}, {"\ud800": 1}]),
)


def valid_event_dict(n: int) -> dict[str, Any]:
    """One valid DealReported in the import format, on its own stream."""
    return {
        "stream_id": f"deal:acme-fuzz-{n}",
        "type": "DealReported",
        "schema": 1,
        "occurred_at": "2026-01-11T00:00:00Z",
        "actor": "cli",
        "source_url": f"https://news.example.com/acme-fuzz-{n}",
        "idempotency_key": f"fuzz:{n}",
        "payload": {
            "lab": "openai",
            "kind": "cloud_contract",
            "status": "signed",
            "counterparties": [{"party": "oracle", "role": "provider"}],
            "capacity_mw": 1000.0,
            "title": f"OpenAI fuzz deal {n}",
        },
    }


@st.composite
def broken_events(draw: st.DrawFn, n: int = 0) -> Any:
    """An event dict that is valid except for one to three mutations, or not a dict at all."""
    shape = draw(st.sampled_from(["mutated", "mutated", "mutated", "junk", "non-dict"]))
    if shape == "non-dict":
        return draw(st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3)))
    if shape == "junk":
        return draw(st.dictionaries(st.sampled_from(EVENT_KEYS), PLAUSIBLE_VALUES, max_size=8))
    event = valid_event_dict(n)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["envelope", "payload"]))
        target = (
            event
            if where == "envelope" or not isinstance(event.get("payload"), dict)
            else (event["payload"])
        )
        keys = EVENT_KEYS if target is event else PAYLOAD_KEYS
        action = draw(st.sampled_from(["replace", "replace", "drop", "add"])) if target else "add"
        key = draw(st.sampled_from(sorted(target)) if action != "add" else st.sampled_from(keys))
        if action == "drop":
            target.pop(key, None)
        else:
            # A copy: the next mutation may edit it, and sampled values are shared objects.
            target[key] = json.loads(json.dumps(draw(PLAUSIBLE_VALUES)))
    return event


# -- the checks ------------------------------------------------------------------------------
# Characters that reorder what a terminal or a chat client shows ("Trojan source").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def assert_clear_message(message: object) -> None:
    """A message a user can read: text, not empty, printable (encodes as UTF-8, no terminal
    control characters) and not a traceback. (Surfaces cut long messages themselves.)"""
    assert isinstance(message, str), repr(message)
    assert message.strip(), "empty message"
    message.encode("utf-8")  # a lone surrogate here would crash the console or a JSON encoder
    controls = [
        c
        for c in message
        if unicodedata.category(c) == "Cc" and c not in "\n\t" or c in BIDI_CONTROLS
    ]
    assert not controls, f"control characters in {message!r}"
    assert "Traceback" not in message, message


class ShortRepr:
    """Fixtures shown by their repr in Hypothesis' reports, not field by field."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


# -- running async parts from Hypothesis' plain tests -----------------------------------------
class LoopThread:
    """An event loop in a thread of its own: servers, the writer and the bot start once and
    each Hypothesis example runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_the_rest() -> None:
            # Views' timeout tasks and the like, so that none is destroyed while pending.
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()
