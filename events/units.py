"""Quantities as news writes them: power in MW, money in USD and chip counts, parsed without IO."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from events.errors import QuantityParseError

QuantityKind = Literal["power_mw", "usd", "count"]

# Refuse values no real deal reaches: a misread number must fail loudly, not skew a position.
MAX_POWER_MW = 1e6
MAX_USD = 1e14
MAX_COUNT = 1e9

_WORD_NUMBERS: dict[str, float] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "dozen": 12,
}
_SCALES: dict[str, float] = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
    "t": 1e12,
}
_POWER_UNITS: dict[str, float] = {
    "gw": 1000.0,
    "gigawatt": 1000.0,
    "gigawatts": 1000.0,
    "mw": 1.0,
    "megawatt": 1.0,
    "megawatts": 1.0,
    "kw": 0.001,
    "kilowatt": 0.001,
    "kilowatts": 0.001,
}

_WORD_NUM = "|".join(
    sorted((w for w in _WORD_NUMBERS if w not in ("a", "an")), key=len, reverse=True)
)
# A number as written: digits with thousands separators and decimals, or a number word.
_NUM = rf"(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|(?:{_WORD_NUM})\b)"
_SCALE_WORDS = r"(?:thousand|million|billion|trillion)"
_SCALE_ABBR = r"(?:bn|mn|mln|tn|[kKmMbBtT])"

_QUALIFIERS: tuple[tuple[str, str], ...] = (
    ("up to", "up to"),
    ("as much as", "up to"),
    ("as many as", "up to"),
    ("more than", "over"),
    ("over", "over"),
    ("exceeds", "over"),
    ("exceeding", "over"),
    ("in excess of", "over"),
    ("at least", "at least"),
    ("upwards of", "over"),
    ("north of", "over"),
    ("about", "about"),
    ("around", "about"),
    ("approximately", "about"),
    ("roughly", "about"),
    ("some", "about"),
    ("nearly", "nearly"),
    ("almost", "nearly"),
    ("close to", "nearly"),
    ("less than", "under"),
    ("under", "under"),
)
_QUALIFIER_RE = re.compile(
    r"(?:^|\W)(" + "|".join(re.escape(q) for q, _ in _QUALIFIERS) + r")\s+(?:an?\s+|the\s+)?"
    r"(?:(?:impressive|staggering|massive|whopping|estimated|additional|further|new)\s+)*$",
    re.IGNORECASE,
)
_QUALIFIER_NAMES = {q: name for q, name in _QUALIFIERS}

_POWER_RE = re.compile(
    rf"(?<![\w$.])(?P<num>{_NUM})(?:\s+{_SCALE_WORDS})?\s*-?\s*"
    r"(?P<unit>gigawatts?|megawatts?|kilowatts?|GW|MW|kW)(?![a-zA-Z])(?P<plus>\+)?",
    re.IGNORECASE,
)
_USD_RE = re.compile(
    r"(?:(?P<cur>US\s?\$|USD\s?|\$)\s?(?P<num>" + _NUM + r")"
    rf"(?:\s*-?\s*(?P<scale>{_SCALE_WORDS})\b|(?P<abbr>{_SCALE_ABBR})\b)?"
    rf"|(?<![\w$.])(?P<num2>{_NUM})\s+(?P<scale2>{_SCALE_WORDS})\s+(?:US\s+|U\.S\.\s+)?dollars\b)",
    re.IGNORECASE,
)
# Nouns that make a bare number a count of accelerators rather than of jobs, homes or acres.
CHIP_NOUNS = (
    r"chips?|gpus?|tpus?|accelerators?|processors?|superchips?|units|xpus?|asics?|"
    r"trainium\d*|inferentia\d*|h100s?|h200s?|b200s?|b300s?|gb200s?|gb300s?|mi\d{3}x?s?|"
    r"blackwells?|rubins?|ironwoods?"
)
_COUNT_RE = re.compile(
    rf"(?<![\w$.])(?P<num>{_NUM}|a)(?:\s*(?P<scale>{_SCALE_WORDS})\b|(?P<abbr>[kKmM])\b)?"
    rf"(?P<tail>(?:\s+(?:of\s+)?[\w'’\"“”.-]+){{0,5}}?\s+[\"“]?(?:{CHIP_NOUNS})\b)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A quantity found in text: kind, value in its unit (MW, USD, units), offsets and qualifier."""

    kind: QuantityKind
    value: float
    start: int
    end: int
    text: str
    qualifier: str | None = None


def _number(token: str) -> float:
    """The value of a digit string ('1,920', '4.5') or a number word ('two')."""
    token = token.strip().lower()
    if token in _WORD_NUMBERS:
        return _WORD_NUMBERS[token]
    try:
        return float(token.replace(",", ""))
    except ValueError:
        raise QuantityParseError(f"Cannot read {token!r} as a number.") from None


def _scale(word: str | None) -> float:
    return _SCALES[word.lower()] if word else 1.0


def _check(value: float, limit: float, what: str, text: str) -> float:
    if value <= 0:
        raise QuantityParseError(f"{what} must be positive, got {text!r}.")
    if value > limit:
        raise QuantityParseError(f"{what} {text!r} is implausibly large (limit {limit:g}).")
    return value


def _power_value(match: re.Match[str]) -> float:
    scale_match = re.search(_SCALE_WORDS, match.group(0), re.IGNORECASE)
    scale = _scale(scale_match.group(0)) if scale_match else 1.0
    return _number(match.group("num")) * scale * _POWER_UNITS[match.group("unit").lower()]


def _usd_value(match: re.Match[str]) -> float:
    if match.group("num") is not None:
        scale = match.group("scale") or match.group("abbr")
        return _number(match.group("num")) * _scale(scale)
    return _number(match.group("num2")) * _scale(match.group("scale2"))


def _count_value(match: re.Match[str]) -> float:
    num = match.group("num")
    base = 1.0 if num.lower() == "a" else _number(num)
    return base * _scale(match.group("scale") or match.group("abbr"))


def _whole(pattern: re.Pattern[str], text: str, what: str) -> re.Match[str]:
    cleaned = text.strip()
    cleaned = re.sub(
        r"^(?:" + "|".join(re.escape(q) for q, _ in _QUALIFIERS) + r")\s+",
        "",
        cleaned,
        flags=re.IGNORECASE,
    )
    match = pattern.search(cleaned)
    if match is None or cleaned[: match.start()].strip() not in ("", "-"):
        raise QuantityParseError(f"Cannot read {text!r} as {what}.")
    rest = cleaned[match.end() :].strip()
    if rest and not re.fullmatch(r"[+.,;]?", rest):
        raise QuantityParseError(f"Cannot read {text!r} as {what}: unexpected {rest!r}.")
    return match


def parse_power_mw(text: str) -> float:
    """Electrical power in megawatts ('1.2 GW' -> 1200.0); QuantityParseError if unreadable."""
    if text.strip().startswith("-"):
        raise QuantityParseError(f"Power must be positive, got {text!r}.")
    match = _whole(_POWER_RE, text, "power")
    return _check(_power_value(match), MAX_POWER_MW, "Power", text)


def parse_usd(text: str) -> float:
    """An amount in US dollars ('$1.4 trillion' -> 1.4e12); other currencies are refused."""
    if re.search(r"[€£¥₹]|\b(?:EUR|GBP|JPY|CNY|RMB|yuan|euros?|pounds?)\b", text, re.IGNORECASE):
        raise QuantityParseError(f"{text!r} is not in US dollars.")
    if re.search(r"-\s*(?:US)?\$|\$\s*-", text):
        raise QuantityParseError(f"Amount must be positive, got {text!r}.")
    match = _whole(_USD_RE, text, "a dollar amount")
    return _check(_usd_value(match), MAX_USD, "Amount", text)


def parse_count(text: str) -> int:
    """A number of units ('400k GB200' -> 400000, '18,000' -> 18000); QuantityParseError if not."""
    cleaned = text.strip()
    if cleaned.startswith("-"):
        raise QuantityParseError(f"Count must be positive, got {text!r}.")
    bare = re.fullmatch(
        rf"(?:(?:up to|over|about|around|nearly|more than|some|at least)\s+)?(?P<num>{_NUM}|a)"
        rf"(?:\s*(?P<scale>{_SCALE_WORDS})\b|(?P<abbr>[kKmM])\b)?",
        cleaned,
        re.IGNORECASE,
    )
    match = bare or _whole(_COUNT_RE, cleaned, "a count")
    value = _count_value(match)
    if value != int(value):
        raise QuantityParseError(f"Count {text!r} is not a whole number.")
    return int(_check(value, MAX_COUNT, "Count", text))


def _qualifier(text: str, start: int) -> str | None:
    match = _QUALIFIER_RE.search(text[max(0, start - 40) : start])
    return _QUALIFIER_NAMES[match.group(1).lower()] if match else None


def find_quantities(text: str) -> list[Quantity]:
    """Every readable power, dollar and chip-count quantity in `text`, in order of position."""
    found: list[Quantity] = []
    taken: list[tuple[int, int]] = []

    def add(kind: QuantityKind, value: float, limit: float, start: int, end: int) -> None:
        if value <= 0 or value > limit or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append(Quantity(kind, value, start, end, text[start:end], _qualifier(text, start)))

    for m in _USD_RE.finditer(text):
        try:
            value = _usd_value(m)
        except QuantityParseError:
            continue
        add("usd", value, MAX_USD, m.start(), m.end())
    for m in _POWER_RE.finditer(text):
        try:
            value = _power_value(m)
        except QuantityParseError:
            continue
        add("power_mw", value, MAX_POWER_MW, m.start(), m.end())
    for m in _COUNT_RE.finditer(text):
        try:
            value = _count_value(m)
        except QuantityParseError:
            continue
        # A count of one is "a chip", not a deal size; counts are at least hundreds in practice.
        if value >= 100 and not re.fullmatch(r"(?:19|20)\d\d", m.group("num")):
            add("count", value, MAX_COUNT, m.start(), m.end())
    found.sort(key=lambda q: q.start)
    return found
