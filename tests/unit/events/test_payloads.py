"""Payload validation: every event type accepts plausible facts and refuses implausible ones."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from events.payloads import (
    DEAL_FACT_TYPES,
    MAX_DEAL_MW,
    MAX_DEAL_USD,
    PAYLOAD_TYPES,
    CandidateAccepted,
    CandidateDeal,
    CandidateProposed,
    CandidateRejected,
    CapacityCameOnline,
    Chips,
    Counterparty,
    CounterpartyJoined,
    DealReported,
    DealsLinked,
    DealStatusChanged,
    DealTermsRevised,
    DigestPosted,
    EventRetracted,
    SourceAdded,
)
from events.vocabulary import DealKind, DealStatus, Role
from tests.factories import one_event_of_every_type

VALID_DEAL: dict[str, Any] = {
    "lab": "openai",
    "kind": "cloud_contract",
    "status": "signed",
    "counterparties": [{"party": "oracle", "role": "provider"}],
    "capacity_mw": 1_000,
    "value_usd": 3e10,
    "title": "OpenAI rents 1 GW of cloud from Oracle",
}


def deal(**changes: Any) -> DealReported:
    return DealReported.model_validate({**VALID_DEAL, **changes})


def test_a_plausible_deal_report_is_accepted() -> None:
    payload = deal(
        chips={"vendor": "nvidia", "family": "GB200", "count": 50_000},
        term_years=5,
        online_from="2026-09",
        location="Abilene, Texas",
    )

    assert payload.lab == "openai"
    assert payload.kind is DealKind.CLOUD_CONTRACT
    assert payload.status is DealStatus.SIGNED
    assert payload.counterparties == (Counterparty(party="oracle", role=Role.PROVIDER),)
    assert payload.capacity_mw == 1_000.0
    assert payload.chips == Chips(vendor="nvidia", family="GB200", count=50_000)


@pytest.mark.parametrize("capacity_mw", [-1, -0.001, MAX_DEAL_MW + 1, 1e12])
def test_negative_or_implausible_capacity_is_refused(capacity_mw: float) -> None:
    with pytest.raises(ValidationError, match="capacity_mw"):
        deal(capacity_mw=capacity_mw)


@pytest.mark.parametrize("value_usd", [-1, MAX_DEAL_USD * 1.01])
def test_negative_or_implausible_value_is_refused(value_usd: float) -> None:
    with pytest.raises(ValidationError, match="value_usd"):
        deal(value_usd=value_usd)


@pytest.mark.parametrize("field", ["capacity_mw", "value_usd", "term_years"])
@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_in_every_measure(field: str, number: float) -> None:
    with pytest.raises(ValidationError, match=field):
        deal(**{field: number})


def test_nan_capacity_coming_online_is_refused() -> None:
    with pytest.raises(ValidationError, match="mw"):
        CapacityCameOnline(mw=math.nan)


def test_zero_capacity_and_value_are_accepted_as_reported_figures() -> None:
    payload = deal(capacity_mw=0, value_usd=0)

    assert (payload.capacity_mw, payload.value_usd) == (0.0, 0.0)


@pytest.mark.parametrize("term_years", [0, -1, 51])
def test_a_term_that_is_not_positive_or_is_implausibly_long_is_refused(term_years: float) -> None:
    with pytest.raises(ValidationError, match="term_years"):
        deal(term_years=term_years)


def test_a_negative_chip_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="count"):
        deal(chips={"vendor": "nvidia", "count": -1})


def test_an_unknown_lab_is_refused_with_a_did_you_mean_suggestion() -> None:
    with pytest.raises(ValidationError) as raised:
        deal(lab="antropic")

    [error] = raised.value.errors()
    assert error["loc"] == ("lab",)
    assert error["msg"] == "Unknown party 'antropic'. Did you mean: anthropic?"


def test_an_unknown_counterparty_is_refused_with_a_did_you_mean_suggestion() -> None:
    with pytest.raises(ValidationError) as raised:
        deal(counterparties=[{"party": "oracel", "role": "provider"}])

    [error] = raised.value.errors()
    assert error["loc"] == ("counterparties", 0, "party")
    assert error["ctx"]["name"] == "oracel"
    assert error["ctx"]["suggestions"][0] == "oracle"


def test_an_unknown_chip_vendor_is_refused() -> None:
    with pytest.raises(ValidationError, match="vendor\n  Unknown party 'nvidai'"):
        Chips(vendor="nvidai")


@pytest.mark.parametrize(
    "fields",
    [{"capacity_mw": True}, {"value_usd": False}, {"term_years": True}],
    ids=["capacity", "value", "term"],
)
def test_true_or_false_is_not_a_number(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="not true or false"):
        deal(**fields)


def test_true_is_not_a_chip_count() -> None:
    with pytest.raises(ValidationError, match="not true or false"):
        Chips(vendor="nvidia", count=True)


def test_a_party_given_by_display_name_instead_of_slug_is_refused() -> None:
    with pytest.raises(ValidationError, match="lab"):
        deal(lab="OpenAI")


def test_the_lab_cannot_be_a_counterparty_of_its_own_deal() -> None:
    with pytest.raises(ValidationError, match="lab cannot also be a counterparty"):
        deal(counterparties=[{"party": "openai", "role": "partner"}])


@pytest.mark.parametrize("online_from", ["2026", "2026-01", "2026-12", "1999"])
def test_online_from_accepts_a_year_or_a_year_and_month(online_from: str) -> None:
    assert deal(online_from=online_from).online_from == online_from


@pytest.mark.parametrize(
    "online_from", ["26", "2026-13", "2026-00", "2026-9", "2026-09-01", "Q3 2026", "1850", ""]
)
def test_a_bad_online_from_is_refused(online_from: str) -> None:
    with pytest.raises(ValidationError, match="online_from must be YYYY or YYYY-MM"):
        deal(online_from=online_from)


def test_an_unknown_deal_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="kind"):
        deal(kind="timeshare")


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValidationError, match="status"):
        deal(status="done")


def test_an_empty_title_is_refused() -> None:
    with pytest.raises(ValidationError, match="title"):
        deal(title="")


def test_a_field_the_payload_does_not_define_is_refused() -> None:
    with pytest.raises(ValidationError, match="headline"):
        deal(headline="old field name")


def test_a_payload_is_immutable() -> None:
    payload = deal()

    with pytest.raises(ValidationError, match="frozen"):
        payload.capacity_mw = 2_000  # type: ignore[misc]


def test_a_terms_revision_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ValidationError, match="must change at least one term"):
        DealTermsRevised(summary="restated the same terms")


def test_a_terms_revision_that_changes_one_term_is_accepted() -> None:
    revision = DealTermsRevised(capacity_mw=2_000)

    assert revision.capacity_mw == 2_000.0
    assert revision.counterparties is None


def test_a_terms_revision_may_replace_the_counterparties_with_none() -> None:
    revision = DealTermsRevised(counterparties=())

    assert revision.counterparties == ()


def test_a_terms_revision_refuses_implausible_capacity() -> None:
    with pytest.raises(ValidationError, match="capacity_mw"):
        DealTermsRevised(capacity_mw=-5)


def test_a_status_change_refuses_an_unknown_status() -> None:
    with pytest.raises(ValidationError, match="status"):
        DealStatusChanged(status="paused")


def test_capacity_coming_online_refuses_negative_mw() -> None:
    with pytest.raises(ValidationError, match="mw"):
        CapacityCameOnline(mw=-10)


def test_a_counterparty_joining_needs_a_known_party_and_role() -> None:
    with pytest.raises(ValidationError, match="role"):
        CounterpartyJoined(party="coreweave", role="landlady")


def test_a_deal_link_refuses_an_unknown_relation() -> None:
    with pytest.raises(ValidationError, match="relation"):
        DealsLinked(relation="related", other_deal="acme-cloud-1")


def test_a_deal_link_refuses_a_malformed_deal_id() -> None:
    with pytest.raises(ValidationError, match="other_deal"):
        DealsLinked(relation="part_of", other_deal="Acme Cloud!")


def test_a_retraction_needs_an_event_id_and_a_reason() -> None:
    with pytest.raises(ValidationError, match="reason"):
        EventRetracted(event_id="0190a0a0-0000-7000-8000-000000000000", reason="")


def test_a_candidate_carries_a_valid_deal() -> None:
    with pytest.raises(ValidationError, match="Unknown party 'acme-ai'"):
        CandidateProposed(
            article_url="https://news.example.com/a",
            deal=CandidateDeal(lab="acme-ai", kind="cloud_contract", status="rumored"),
        )


def test_a_candidate_acceptance_refuses_a_malformed_deal_id() -> None:
    with pytest.raises(ValidationError, match="deal_id"):
        CandidateAccepted(deal_id="x")


@pytest.mark.parametrize("week", ["2026-W00", "2026-W54", "2026-02", "26-W02"])
def test_a_digest_refuses_a_malformed_iso_week(week: str) -> None:
    with pytest.raises(ValidationError, match="week"):
        DigestPosted(channel_id="1100", week=week, message_id="1200")


def test_a_digest_refuses_a_channel_id_that_is_not_a_discord_snowflake() -> None:
    with pytest.raises(ValidationError, match="channel_id"):
        DigestPosted(channel_id="general", week="2026-W02", message_id="1200")


def test_every_payload_type_is_registered_under_its_class_name() -> None:
    expected = {
        DealReported,
        DealTermsRevised,
        DealStatusChanged,
        CapacityCameOnline,
        CounterpartyJoined,
        DealsLinked,
        SourceAdded,
        EventRetracted,
        CandidateProposed,
        CandidateAccepted,
        CandidateRejected,
        DigestPosted,
    }

    assert {cls for cls in PAYLOAD_TYPES.values() if cls in expected} == expected
    assert all(PAYLOAD_TYPES[cls.__name__] is cls for cls in expected)


def test_deal_facts_are_exactly_the_events_about_a_deal() -> None:
    assert DEAL_FACT_TYPES >= {
        "DealReported",
        "DealTermsRevised",
        "DealStatusChanged",
        "CapacityCameOnline",
        "CounterpartyJoined",
        "DealsLinked",
        "SourceAdded",
    }
    assert DEAL_FACT_TYPES.isdisjoint(
        {
            "EventRetracted",
            "CandidateProposed",
            "CandidateAccepted",
            "CandidateRejected",
            "DigestPosted",
        }
    )


def test_the_factories_make_one_event_of_every_payload_type() -> None:
    types = [event.type for event in one_event_of_every_type()]

    assert sorted(set(types)) == sorted(PAYLOAD_TYPES)


def test_candidate_rejection_without_a_reason_is_accepted() -> None:
    assert CandidateRejected().reason is None


def test_a_source_added_may_carry_only_a_note() -> None:
    assert SourceAdded(note="second outlet").note == "second outlet"
