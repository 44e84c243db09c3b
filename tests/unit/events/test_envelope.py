"""NewEvent envelopes: what a caller may offer the log, and the JSONL round trip of every type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from events.envelope import NewEvent, RecordedEvent, uuid7
from events.errors import UpcastError
from events.payloads import DealStatusChanged
from tests.factories import (
    JAN_11,
    make_deal_reported,
    make_status_change,
    one_event_of_every_type,
)

EVERY_TYPE = one_event_of_every_type()


def envelope(**changes: Any) -> dict[str, Any]:
    """The fields of a valid status-change envelope, with `changes` applied."""
    fields: dict[str, Any] = {
        "stream_id": "deal:acme-cloud-1",
        "payload": DealStatusChanged(status="signed"),
        "occurred_at": JAN_11,
        "actor": "cli",
        "source_url": "https://news.example.com/acme-cloud-1",
    }
    fields.update(changes)
    return fields


@pytest.mark.parametrize("event", EVERY_TYPE, ids=lambda e: e.type)
def test_json_round_trip_keeps_every_payload_type_intact(event: NewEvent) -> None:
    data = event.to_json_dict()

    again = NewEvent.from_json_dict(data)

    assert again == event
    assert type(again.payload) is type(event.payload)


@pytest.mark.parametrize("event", EVERY_TYPE, ids=lambda e: e.type)
def test_json_form_names_the_type_and_schema_and_omits_empty_fields(event: NewEvent) -> None:
    data = event.to_json_dict()

    assert data["type"] == event.type
    assert data["schema"] == type(event.payload).SCHEMA
    assert None not in data.values()
    assert None not in data["payload"].values()
    assert "expected_version" not in data


def test_a_naive_occurred_at_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        NewEvent(**envelope(occurred_at=datetime(2026, 1, 11)))  # noqa: DTZ001


def test_occurred_at_in_another_timezone_is_stored_as_utc() -> None:
    paris_noon = datetime(2026, 1, 11, 12, tzinfo=timezone(timedelta(hours=1)))

    event = NewEvent(**envelope(occurred_at=paris_noon))

    assert event.occurred_at == datetime(2026, 1, 11, 11, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_an_occurred_at_before_1990_is_refused() -> None:
    with pytest.raises(ValidationError, match="before 1990"):
        NewEvent(**envelope(occurred_at=datetime(1989, 12, 31, tzinfo=UTC)))


def test_a_deal_fact_without_a_source_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a source_url"):
        NewEvent(**envelope(source_url=None))


def test_a_seed_document_is_accepted_as_a_source() -> None:
    event = NewEvent(**envelope(source_url="seed:seed-003.txt"))

    assert event.source_url == "seed:seed-003.txt"


@pytest.mark.parametrize(
    "source_url", ["news.example.com/a", "ftp://example.com/a", "seed:", "seed:../x/y", "see above"]
)
def test_a_source_that_is_neither_a_url_nor_a_seed_reference_is_refused(source_url: str) -> None:
    with pytest.raises(ValidationError, match="source_url must be"):
        NewEvent(**envelope(source_url=source_url))


def test_a_deal_fact_outside_a_deal_stream_is_refused() -> None:
    with pytest.raises(ValidationError, match="belongs in a deal:<id> stream"):
        NewEvent(**envelope(stream_id="candidate:abc"))


@pytest.mark.parametrize("stream_id", ["deal:ACME-1", "deal:acme.cloud", "deal:acme:1", "deal:a"])
def test_a_deal_stream_whose_id_is_not_a_deal_id_is_refused(stream_id: str) -> None:
    with pytest.raises(ValidationError, match="stream"):
        NewEvent(**envelope(stream_id=stream_id))


def test_an_event_that_is_not_a_deal_fact_needs_no_source() -> None:
    [rejected] = [e for e in EVERY_TYPE if e.type == "CandidateRejected"]

    assert rejected.source_url is None


@pytest.mark.parametrize("stream_id", ["deal", "Deal:x", "deal:", "deal: x", "deal:-x", "x" * 10])
def test_a_malformed_stream_id_is_refused(stream_id: str) -> None:
    with pytest.raises(ValidationError, match="stream_id"):
        NewEvent(**envelope(stream_id=stream_id))


@pytest.mark.parametrize("actor", ["discord:12345", "feed:hn", "import:ledger.jsonl", "api", "cli"])
def test_the_known_actor_forms_are_accepted(actor: str) -> None:
    assert NewEvent(**envelope(actor=actor)).actor == actor


@pytest.mark.parametrize("actor", ["", "bob", "discord:bob", "CLI"])
def test_an_unknown_actor_form_is_refused(actor: str) -> None:
    with pytest.raises(ValidationError, match="actor"):
        NewEvent(**envelope(actor=actor))


def test_a_negative_expected_version_is_refused() -> None:
    with pytest.raises(ValidationError, match="expected_version"):
        NewEvent(**envelope(expected_version=-1))


def test_the_event_id_is_the_key_when_no_idempotency_key_is_given() -> None:
    event = make_status_change()

    assert event.key == str(event.event_id)


def test_the_idempotency_key_is_the_key_when_given() -> None:
    event = make_status_change(idempotency_key="feed:hn:123")

    assert event.key == "feed:hn:123"


def test_event_ids_are_time_ordered_version_7_uuids() -> None:
    ids = [uuid7() for _ in range(1_000)]

    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert ids == sorted(ids, key=lambda u: u.int)
    assert len(set(ids)) == len(ids)


def test_reading_json_ignores_fields_the_store_assigns() -> None:
    data = make_status_change().to_json_dict() | {"seq": 99, "version": 7, "recorded_at": "x"}

    event = NewEvent.from_json_dict(data)

    assert event.type == "DealStatusChanged"


def test_reading_json_of_an_unknown_type_is_refused_with_the_known_types() -> None:
    data = make_status_change().to_json_dict() | {"type": "DealSigned"}

    with pytest.raises(ValueError, match="unknown event type 'DealSigned'; known: DealReported"):
        NewEvent.from_json_dict(data)


def test_reading_json_whose_payload_is_not_an_object_is_refused() -> None:
    data = make_status_change().to_json_dict() | {"payload": ["signed"]}

    with pytest.raises(ValueError, match="payload must be a JSON object"):
        NewEvent.from_json_dict(data)


@pytest.mark.parametrize("schema", ["1", 1.0, True])
def test_reading_json_with_a_schema_that_is_not_an_integer_is_refused(schema: object) -> None:
    data = make_status_change().to_json_dict() | {"schema": schema}

    with pytest.raises(ValueError, match="schema must be an integer"):
        NewEvent.from_json_dict(data)


def test_reading_json_without_a_schema_assumes_the_current_one() -> None:
    data = make_status_change().to_json_dict()
    del data["schema"]

    assert NewEvent.from_json_dict(data).payload == DealStatusChanged(status="operational")


def test_reading_json_with_a_newer_schema_is_refused_clearly() -> None:
    data = make_status_change().to_json_dict() | {"schema": 2}

    with pytest.raises(UpcastError, match="newer than this version knows"):
        NewEvent.from_json_dict(data)


def test_reading_json_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        NewEvent.from_json_dict(["not", "an", "event"])  # type: ignore[arg-type]


def test_an_envelope_is_immutable() -> None:
    event = make_deal_reported()

    with pytest.raises(ValidationError, match="frozen"):
        event.actor = "system"  # type: ignore[misc]


def test_a_recorded_event_reads_naive_store_times_as_utc() -> None:
    event = make_status_change()

    recorded = RecordedEvent.model_validate(
        {
            "seq": 1,
            "event_id": event.event_id,
            "stream_id": event.stream_id,
            "version": 2,
            "type": event.type,
            "schema": 1,
            "occurred_at": datetime(2026, 1, 11),  # noqa: DTZ001
            "recorded_at": datetime(2026, 3, 1, 1, tzinfo=timezone(timedelta(hours=1))),
            "actor": "cli",
            "source_url": event.source_url,
            "source_title": None,
            "idempotency_key": event.key,
            "payload": event.payload,
        }
    )

    assert recorded.occurred_at == JAN_11
    assert recorded.recorded_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert recorded.to_json_dict()["schema"] == 1
    assert isinstance(recorded.event_id, UUID)
