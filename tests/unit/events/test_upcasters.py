"""Upcasters: old payload schemas are brought forward on read; newer ones are refused clearly."""

from __future__ import annotations

import pytest

from events.envelope import NewEvent
from events.errors import UpcastError
from events.payloads import DealReported
from events.upcasters import UPCASTERS, current_schema, upcast

# A DealReported as pre-release drafts wrote it (schema 0): `headline`, capacity in GW.
DEAL_REPORTED_SCHEMA_0 = {
    "lab": "xai",
    "kind": "capacity_partnership",
    "status": "signed",
    "counterparties": [{"party": "oracle", "role": "partner"}],
    "capacity_gw": 0.3,
    "headline": "A lab shares a supercomputer's capacity",
}
SCHEMA_0_LINE = {
    "stream_id": "deal:acme-colossus-share",
    "occurred_at": "2026-01-11T00:00:00Z",
    "actor": "import:drafts.jsonl",
    "source_url": "seed:seed-005.txt",
    "event_id": "019ba5a0-0000-7000-8000-000000000001",
    "type": "DealReported",
    "schema": 0,
    "payload": DEAL_REPORTED_SCHEMA_0,
}


def test_a_schema_0_deal_report_is_upcast_to_title_and_megawatts() -> None:
    payload = upcast("DealReported", 0, DEAL_REPORTED_SCHEMA_0)

    assert payload["title"] == "A lab shares a supercomputer's capacity"
    assert payload["capacity_mw"] == pytest.approx(300.0)
    assert "headline" not in payload and "capacity_gw" not in payload


def test_a_schema_0_deal_report_line_reads_as_a_current_deal_report() -> None:
    event = NewEvent.from_json_dict(SCHEMA_0_LINE)

    assert isinstance(event.payload, DealReported)
    assert event.payload.title == "A lab shares a supercomputer's capacity"
    assert event.payload.capacity_mw == pytest.approx(300.0)
    assert event.to_json_dict()["schema"] == 1


def test_a_schema_0_deal_report_without_capacity_stays_without_capacity() -> None:
    old = {k: v for k, v in DEAL_REPORTED_SCHEMA_0.items() if k != "capacity_gw"}

    payload = upcast("DealReported", 0, old)

    assert "capacity_mw" not in payload


def test_a_schema_0_deal_report_with_null_capacity_gets_null_megawatts() -> None:
    payload = upcast("DealReported", 0, DEAL_REPORTED_SCHEMA_0 | {"capacity_gw": None})

    assert payload["capacity_mw"] is None


def test_upcasting_leaves_the_stored_payload_untouched() -> None:
    stored = dict(DEAL_REPORTED_SCHEMA_0)

    upcast("DealReported", 0, stored)

    assert stored == DEAL_REPORTED_SCHEMA_0


def test_a_current_payload_passes_through_unchanged() -> None:
    current = {"status": "signed"}

    assert upcast("DealStatusChanged", current_schema("DealStatusChanged"), current) == current


def test_a_payload_newer_than_known_is_refused_with_an_upgrade_hint() -> None:
    with pytest.raises(
        UpcastError, match=r"schema 7, newer than this version knows \(1\); upgrade"
    ):
        upcast("DealReported", 7, {"title": "from the future"})


def test_a_payload_newer_than_known_in_a_json_line_is_refused() -> None:
    with pytest.raises(UpcastError, match="newer than this version knows"):
        NewEvent.from_json_dict(SCHEMA_0_LINE | {"schema": 2})


def test_an_old_schema_without_an_upcaster_is_refused() -> None:
    with pytest.raises(UpcastError, match="no upcaster for DealStatusChanged from schema 0"):
        upcast("DealStatusChanged", 0, {"status": "signed"})


def test_every_upcaster_starts_below_its_types_current_schema() -> None:
    assert all(schema < current_schema(type_name) for type_name, schema in UPCASTERS)
