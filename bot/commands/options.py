"""Parsing of option values shared by every surface: dates, labs, choices, numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from bot.errors import UserInputError
from events.errors import UnknownPartyError
from events.parties import PartyRegistry

DATE_FORMATS = ("%Y-%m-%d",)


def parse_day(text: str, *, option: str = "date", today: date | None = None) -> date:
    """A calendar day written YYYY-MM-DD, or 'today' (the injected clock's day, when given)."""
    text = text.strip()
    if text.lower() in ("today", "now") and today is not None:
        return today
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserInputError(
            f"{option}: {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-12-31"
        ) from None


def end_of_day(day: date) -> datetime:
    """The last instant of a UTC day: as_of 2025-12-31 includes what happened on that day."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(
        microseconds=1
    )


def parse_moment(text: str | None, *, option: str, today: date | None = None) -> datetime | None:
    """An optional as_of / known_at option: the end of the given day, or None for now;
    'today' is the end of `today` (the caller's clock)."""
    if text is None or text.strip() == "" or text.strip().lower() == "now":
        return None
    day = parse_day(text, option=option, today=today)
    if day.year < 1990 or day.year > 2200:
        raise UserInputError(f"{option}: {day} is out of range")
    return end_of_day(day)


def parse_party(registry: PartyRegistry, text: str, *, option: str = "lab") -> str:
    """The slug of a party named by slug, name or alias; an error with suggestions otherwise."""
    try:
        return registry.resolve(text).slug
    except UnknownPartyError as exc:
        hint = (
            f" Did you mean {', '.join(exc.suggestions)}?"
            if exc.suggestions
            else (" /labs lists the labs.")
        )
        raise UserInputError(f"{option}: no lab or company is called {text!r}.{hint}") from None


def parse_choice(text: str, choices: tuple[str, ...], *, option: str) -> str:
    value = text.strip().lower().replace("-", "_").replace(" ", "_")
    if value in choices:
        return value
    prefixed = [c for c in choices if c.startswith(value)] if value else []
    if len(prefixed) == 1:
        return prefixed[0]
    raise UserInputError(f"{option}: {text!r} is not one of {', '.join(choices)}")


def parse_int(text: str, *, option: str, minimum: int = 1, maximum: int = 10_000) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserInputError(f"{option}: {text!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise UserInputError(f"{option}: must be between {minimum} and {maximum}")
    return value
