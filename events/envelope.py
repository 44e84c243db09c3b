"""Envelopes: what a caller offers the log (NewEvent) and what it gives back (RecordedEvent)."""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    field_validator,
    model_validator,
)

from events.payloads import DEAL_FACT_TYPES, PAYLOAD_TYPES, EventPayload
from events.upcasters import upcast

STREAM_PATTERN = r"^[a-z]+:[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
ACTOR_PATTERN = r"^(discord:\d+|feed:[\w.:/-]+|import:.+|api(:[\w.-]+)?|cli|console|ledger|system)$"
SEED_PATTERN = re.compile(r"^seed:[\w.-]+$")
DEAL_STREAM = re.compile(r"^deal:(?=.{3,120}$)[a-z0-9]+(?:[-_][a-z0-9]+)*$")
URL_PATTERN = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


_last_uuid7 = 0
_uuid7_lock = threading.Lock()


def uuid7() -> UUID:
    """A time-ordered UUID (RFC 9562 version 7), increasing even within one millisecond."""
    global _last_uuid7
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 64) & 0xFFF) << 64  # 12 random bits after the version
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    with _uuid7_lock:
        if value <= _last_uuid7:
            # Same millisecond (or a clock step back): count up from the last id instead, which
            # keeps the version and variant bits because the low 62 bits rarely overflow.
            value = _last_uuid7 + 1
        _last_uuid7 = value
    return UUID(int=value)


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def _source_url(url: str) -> str:
    url = url.strip()
    if not (URL_PATTERN.match(url) or SEED_PATTERN.match(url)):
        raise ValueError("source_url must be an http(s) URL or a seed reference like seed:003.txt")
    return url


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
SourceUrl = Annotated[str, Field(max_length=2000), AfterValidator(_source_url)]


class NewEvent(BaseModel):
    """An event a caller offers to the log; the store assigns seq, version and recorded_at."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stream_id: str = Field(pattern=STREAM_PATTERN)
    payload: SerializeAsAny[EventPayload]
    occurred_at: UtcDatetime
    actor: str = Field(pattern=ACTOR_PATTERN, max_length=300)
    source_url: SourceUrl | None = None
    source_title: str | None = Field(default=None, max_length=500)
    event_id: UUID = Field(default_factory=uuid7)
    # The same key offered twice is stored once; without one, the event id is the key.
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=300)
    # When set, the stream must stand at exactly this version just before this event.
    expected_version: int | None = Field(default=None, ge=0)

    @field_validator("expected_version", mode="before")
    @classmethod
    def _version_is_not_a_bool(cls, value: object) -> object:
        # Lax pydantic reads true as version 1: a JSON true is a mistake, not a version.
        if isinstance(value, bool):
            raise ValueError("expected_version must be a whole number, not true or false")
        return value

    @property
    def type(self) -> str:
        return type(self.payload).__name__

    @property
    def key(self) -> str:
        return self.idempotency_key or str(self.event_id)

    @model_validator(mode="after")
    def _deal_facts_have_sources(self) -> NewEvent:
        if self.stream_id.startswith("deal:") and not DEAL_STREAM.match(self.stream_id):
            raise ValueError(
                f"{self.stream_id!r} is not a deal stream: use deal:<id> with a lowercase id of "
                "3-120 letters, digits, - and _ (e.g. deal:acme-cloud-2026)"
            )
        if self.type in DEAL_FACT_TYPES:
            if not self.stream_id.startswith("deal:"):
                raise ValueError(f"{self.type} belongs in a deal:<id> stream, not {self.stream_id}")
            if not self.source_url:
                raise ValueError(f"{self.type} needs a source_url (an http(s) URL or seed:<file>)")
        if self.occurred_at.year < 1990:
            raise ValueError("occurred_at is before 1990: not a plausible date for a compute deal")
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """The project's JSONL event format (what `computewatch import` reads)."""
        data = self.model_dump(mode="json", exclude={"payload", "expected_version"})
        data = {k: v for k, v in data.items() if v is not None}
        data["type"] = self.type
        data["schema"] = type(self.payload).SCHEMA
        data["payload"] = self.payload.model_dump(mode="json", exclude_none=True)
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> NewEvent:
        """Read one event of the JSONL format, upcasting an old payload schema on the way in."""
        if not isinstance(data, dict):
            raise ValueError("an event must be a JSON object")
        data = dict(data)
        for store_field in ("seq", "version", "recorded_at"):
            data.pop(store_field, None)  # assigned by the store, never taken from input
        type_name = data.pop("type", None)
        schema = data.pop("schema", None)
        payload = data.pop("payload", None)
        payload_cls = PAYLOAD_TYPES.get(type_name) if isinstance(type_name, str) else None
        if payload_cls is None:
            raise ValueError(f"unknown event type {type_name!r}; known: {', '.join(PAYLOAD_TYPES)}")
        if not isinstance(payload, dict):
            raise ValueError("payload must be a JSON object")
        if schema is None:
            schema = payload_cls.SCHEMA
        if not isinstance(schema, int) or isinstance(schema, bool):
            raise ValueError("schema must be an integer")
        data["payload"] = payload_cls.model_validate(upcast(type_name, schema, payload))
        return cls.model_validate(data)


class RecordedEvent(BaseModel):
    """An event as stored: the caller's fields plus the store's seq, version and recorded_at."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    seq: int
    event_id: UUID
    stream_id: str
    version: int
    type: str
    schema_version: int = Field(alias="schema")
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    source_url: str | None
    source_title: str | None
    idempotency_key: str
    payload: SerializeAsAny[EventPayload]

    @field_validator("occurred_at", "recorded_at")
    @classmethod
    def _as_utc(cls, dt: datetime) -> datetime:
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    def to_json_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude={"payload"})
        data["payload"] = self.payload.model_dump(mode="json", exclude_none=True)
        return data


def now_utc() -> datetime:
    """The wall clock in UTC; only composition roots and clocks call it."""
    return datetime.now(UTC)
