"""Drafts of analyst writes: form text in, the NewEvents to confirm out (pure, Discord-free)."""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from datetime import UTC, datetime, time

from pydantic import ValidationError

from bot.answers import Answer, Fact, Table
from bot.commands.options import parse_day
from bot.errors import UserInputError, shown
from bot.formats import gw, usd
from events.envelope import NewEvent
from events.errors import UnknownPartyError
from events.parties import PartyRegistry
from events.payloads import Counterparty, DealReported, EventPayload
from events.units import QuantityParseError, parse_power_mw, parse_usd
from events.vocabulary import Role

ROLES = tuple(r.value for r in Role)


def actor_of(user_id: int) -> str:
    """The actor recorded on events written by a Discord user."""
    return f"discord:{user_id}"


def parse_counterparties(text: str, registry: PartyRegistry) -> tuple[Counterparty, ...]:
    """'google:provider, broadcom:chip_supplier' -> counterparties (role defaults to provider)."""
    found: list[Counterparty] = []
    for item in (i.strip() for i in re.split(r"[,;\n]+", text or "")):
        if not item:
            continue
        name, _, role = item.rpartition(":") if ":" in item else (item, "", "provider")
        role = role.strip().lower().replace(" ", "_").replace("-", "_") or "provider"
        if role not in ROLES:
            raise UserInputError(
                f"counterparties: {role!r} is not a role; use one of "
                f"{', '.join(ROLES)} (e.g. google:provider)"
            )
        try:
            slug = registry.resolve(name.strip()).slug
        except UnknownPartyError as exc:
            hint = f" Did you mean {', '.join(exc.suggestions)}?" if exc.suggestions else ""
            raise UserInputError(
                f"counterparties: no company is called {name.strip()!r}.{hint}"
            ) from None
        found.append(Counterparty(party=slug, role=Role(role)))
    return tuple(found)


def parse_capacity_mw(text: str | None) -> float | None:
    """'1000', '1000 MW' or '1.2 GW' -> MW; blank -> None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        pass
    try:
        return parse_power_mw(text)
    except QuantityParseError as exc:
        raise UserInputError(f"capacity: {exc} Write MW (1000) or GW (1.2 GW).") from None


def parse_value_usd(text: str | None) -> float | None:
    """'$20 billion', '20e9' or '20000000000' -> dollars; blank -> None."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text.replace(",", "").replace("$", ""))
    except ValueError:
        pass
    try:
        return parse_usd(text)
    except QuantityParseError as exc:
        raise UserInputError(f"value: {exc} Write e.g. $20 billion.") from None


def parse_occurred_at(text: str | None, now: datetime) -> datetime:
    """The day a thing happened (YYYY-MM-DD, blank for today), as 00:00 UTC of that day."""
    text = (text or "").strip()
    today = now.astimezone(UTC).date()
    day = parse_day(text, option="date", today=today) if text else today
    if day > today:
        # The store refuses it too, but only at Confirm; the form says so at once.
        raise UserInputError(f"date: {day} is in the future; give the day it happened")
    return datetime.combine(day, time.min, tzinfo=UTC)


def new_deal_id(
    lab: str, counterparties: Sequence[Counterparty], kind: str, year: int, taken: Container[str]
) -> str:
    """A readable, unused deal id: <lab>-<first counterparty or kind>-<year>[-n] (taken: the
    autocomplete index's ids, looked up by bisection instead of copied into a set)."""
    other = counterparties[0].party if counterparties else kind.replace("_", "-")
    base = re.sub(r"[^a-z0-9]+", "-", f"{lab}-{other}-{year}".lower()).strip("-")[:110]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def build_event(
    *,
    stream_id: str,
    payload_cls: type[EventPayload],
    fields: dict[str, object],
    occurred_at: datetime,
    actor: str,
    source_url: str | None,
    expected_version: int | None,
) -> NewEvent:
    """A NewEvent from form values; a validation error becomes a message the analyst can act on."""
    try:
        payload = payload_cls(**{k: v for k, v in fields.items() if v is not None})
        return NewEvent(
            stream_id=stream_id,
            payload=payload,
            occurred_at=occurred_at,
            actor=actor,
            source_url=(source_url or "").strip() or None,
            expected_version=expected_version,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in exc.errors()
        )
        # Locations and messages may quote what was typed: control characters are escaped.
        raise UserInputError(f"Cannot record this: {shown(problems, limit=1500)}") from None


def default_title(registry: PartyRegistry, payload: DealReported) -> str:
    lab = registry.get(payload.lab).name if payload.lab in registry else payload.lab
    others = ", ".join(registry.get(c.party).name for c in payload.counterparties)
    return f"{lab} {payload.kind.value.replace('_', ' ')}" + (f" with {others}" if others else "")


def preview(title: str, events: Sequence[NewEvent], actor: str) -> Answer:
    """What the confirmation shows: every event that would be written, with its fields."""
    rows = []
    for event in events:
        fields = event.payload.model_dump(
            mode="json", exclude_none=True, exclude={"date_precision", "summary"}
        )
        detail = ", ".join(f"{k}={_short(v)}" for k, v in fields.items() if v not in ((), [], ""))
        rows.append([event.type, event.stream_id, f"{event.occurred_at:%Y-%m-%d}", detail])
    facts = [Fact(name="Actor", value=actor), Fact(name="Events", value=str(len(events)))]
    first = events[0]
    if first.source_url:
        facts.append(Fact(name="Source", value=first.source_url, inline=False))
    if first.expected_version is not None:
        facts.append(Fact(name="Stream version seen", value=str(first.expected_version)))
    payload = first.payload
    if isinstance(payload, DealReported):
        facts += [
            Fact(name="Capacity", value=gw(payload.capacity_mw) if payload.capacity_mw else "—"),
            Fact(name="Value", value=usd(payload.value_usd) if payload.value_usd else "—"),
        ]
    return Answer(
        command="preview",
        title=title,
        summary="Confirm to append these events to the log, or cancel; nothing is written yet.",
        facts=facts,
        table=Table(columns=["event", "stream", "occurred", "fields"], rows=rows),
        data={"events": [e.to_json_dict() for e in events]},
        ephemeral=True,
    )


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return ":".join(str(v) for v in value.values())
    return str(value)
