"""The bundled reference ledger: real compute deals as events (events/data/ledger.jsonl)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from events.envelope import NewEvent


@cache
def bundled_ledger() -> tuple[NewEvent, ...]:
    """Every event of the bundled ledger, in order (each with a stable idempotency key)."""
    text = resources.files("events").joinpath("data/ledger.jsonl").read_text(encoding="utf-8")
    return tuple(NewEvent.from_json_dict(json.loads(line)) for line in text.splitlines() if line)
