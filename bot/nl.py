"""Plain-English questions to commands: simple keyword rules over the text and the party names.

Discord-free: the Discord mention handler and any other surface may use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from events.parties import PartyRegistry
from events.vocabulary import PartyKind

RawArguments = dict[str, str | list[str] | None]

_WORD = re.compile(r"[a-z0-9][a-z0-9.&'-]*")
_DATE = r"(\d{4}-\d{2}-\d{2})"
_KNOWN_AT = re.compile(rf"\b(?:as\s+)?(?:known|believed|thought)\s+(?:on|at|by)?\s*{_DATE}")
_AS_OF = re.compile(rf"\b(?:as\s+of|on|at|by|in|before|until)\s+{_DATE}")
_ANY_DATE = re.compile(_DATE)
MAX_NGRAM = 3

# Keyword rules, checked in order; the first that fits decides the command.
_EXPLAIN = ("explain", "why", "behind", "which deals", "what deals", "break down", "breakdown")
_LEADERBOARD = (
    "leaderboard",
    "who leads",
    "who is leading",
    "who's leading",
    "who is ahead",
    "who's ahead",
    "ranking",
    "rank",
    "top labs",
    "biggest",
    "largest",
    "most compute",
)
_COVERAGE = ("coverage", "trust", "how reliable", "how sure", "confidence")
_LABS = ("which labs", "what labs", "list labs", "labs do you", "labs you")
_DEALS = ("deals", "list", "latest", "recent")
_HELP = ("help", "what can you", "how do i", "commands")

# Words that name a figure, mapped to /explain buckets and /leaderboard metrics.
_BUCKET_WORDS = (
    ("operational", "operational", "operational_gw"),
    ("online", "operational", "operational_gw"),
    ("live", "operational", "operational_gw"),
    ("contracted", "contracted", "contracted_gw"),
    ("signed", "contracted", "contracted_gw"),
    ("pipeline", "pipeline", "pipeline_gw"),
    ("loi", "pipeline", "pipeline_gw"),
    ("negotiat", "pipeline", "pipeline_gw"),
    ("rumo", "rumored", "rumored_gw"),
    ("backing", "backing_usd", "backing_usd"),
    ("guarantee", "backing_usd", "backing_usd"),
    ("invest", "backing_usd", "backing_usd"),
    ("chip", "chips", "committed_gw"),
    ("gpu", "chips", "committed_gw"),
    ("tpu", "chips", "committed_gw"),
    ("dollar", "committed_usd", "committed_usd"),
    ("spend", "committed_usd", "committed_usd"),
    ("money", "committed_usd", "committed_usd"),
    ("$", "committed_usd", "committed_usd"),
    ("usd", "committed_usd", "committed_usd"),
    ("number of deals", "deals", "deals"),
    ("how many deals", "deals", "deals"),
)


@dataclass(frozen=True)
class Intent:
    """A command line the question maps to: the command's name and its raw option text."""

    command: str
    raw: RawArguments = field(default_factory=dict)

    def line(self) -> str:
        """The equivalent command line, to show the user what was understood."""
        parts = [f"/{self.command}"]
        for name, value in self.raw.items():
            if value is None:
                continue
            text = ",".join(value) if isinstance(value, list) else value
            parts.append(f"{name}:{text}")
        return " ".join(parts)


def strip_mentions(text: str) -> str:
    """The message without Discord mention markup (<@123>, <@!123>, <@&123>)."""
    return re.sub(r"<@[!&]?\d+>", " ", text).strip()


def find_parties(text: str, registry: PartyRegistry) -> list[str]:
    """Slugs of the parties named in the text, in order of first mention; labs come first.

    Longer names win over the words inside them ("hut 8" over "hut"). When some named party
    is a lab, only labs are returned: in a question, the other parties are usually suppliers.
    """
    words = _WORD.findall(text.lower())
    found: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(MAX_NGRAM, len(words) - i), 0, -1):
            name = " ".join(words[i : i + size]).strip(".'")
            party = registry.find(name) if name else None
            if party is None and name.endswith("'s"):
                party = registry.find(name[:-2])
            if party is not None:
                if party.slug not in found:
                    found.append(party.slug)
                i += size
                break
        else:
            i += 1
    labs = [s for s in found if registry.get(s).kind is PartyKind.LAB]
    return labs or found


def _has(text: str, keywords: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![a-z]){re.escape(k)}", text) for k in keywords)


def _figure(text: str) -> tuple[str, str] | None:
    """The (/explain bucket, /leaderboard metric) the question is about, if it names one."""
    for word, bucket, metric in _BUCKET_WORDS:
        if word in text:
            return bucket, metric
    return None


def _dates(text: str) -> RawArguments:
    dates: RawArguments = {}
    known = _KNOWN_AT.search(text)
    if known:
        dates["known_at"] = known.group(1)
        text = text[: known.start()] + text[known.end() :]
    as_of = _AS_OF.search(text) or _ANY_DATE.search(text)
    if as_of:
        dates["as_of"] = as_of.group(1)
    return dates


def match_question(text: str, registry: PartyRegistry) -> Intent | None:
    """The command that answers a plain-English question, or None when no rule fits."""
    question = strip_mentions(text).lower()
    if not question.strip():
        return None
    labs = find_parties(question, registry)
    dates = _dates(question)
    figure = _figure(question)
    if _has(question, _HELP) and not labs:
        return Intent("help")
    if _has(question, _EXPLAIN) and len(labs) == 1:
        bucket = figure[0] if figure else "contracted"
        return Intent("explain", {"lab": labs[0], "bucket": bucket, **dates})
    if _has(question, _LEADERBOARD) and len(labs) < 2:
        return Intent("leaderboard", {"metric": figure[1] if figure else "committed_gw", **dates})
    if _has(question, _COVERAGE) and not labs:
        return Intent("coverage")
    if _has(question, _LABS) and not labs:
        return Intent("labs")
    if len(labs) >= 2:
        return Intent("compare", {"labs": labs[:6], **dates})
    if len(labs) == 1:
        if _has(question, _DEALS) and not figure:
            return Intent("deals", {"lab": labs[0]})
        return Intent("position", {"lab": labs[0], **dates})
    if _has(question, _DEALS):
        return Intent("deals")
    return None
