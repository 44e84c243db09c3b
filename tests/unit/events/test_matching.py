"""Matching a candidate to known deals: an update of the deal it describes, or a new deal id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from events.matching import events_for, match_candidate, new_deal_id
from events.payloads import (
    CandidateDeal,
    Counterparty,
    DealReported,
    DealStatusChanged,
    DealTermsRevised,
    SourceAdded,
)

JAN_10 = datetime(2026, 1, 10, tzinfo=UTC)
URL = "https://news.example.com/a/1"


@dataclass(frozen=True)
class Deal:
    deal_id: str = "openai-oracle-cloud-2026"
    lab: str = "openai"
    kind: str = "cloud_contract"
    status: str = "loi"
    capacity_mw: float | None = 1_000
    value_usd: float | None = None
    counterparties: list[dict[str, str]] = field(
        default_factory=lambda: [{"party": "oracle", "role": "provider"}]
    )
    first_reported_at: datetime = JAN_10
    last_event_at: datetime = JAN_10
    chips: dict[str, object] | None = None


def candidate(**kw: object) -> CandidateDeal:
    fields: dict[str, object] = {
        "lab": "openai",
        "kind": "cloud_contract",
        "status": "loi",
        "capacity_mw": 1_000,
        "counterparties": (Counterparty(party="oracle", role="provider"),),
        "evidence": "OpenAI rents 1 GW from Oracle.",
    }
    fields.update(kw)
    return CandidateDeal.model_validate(fields)


def test_same_deal_same_status_is_a_corroborating_source() -> None:
    match = match_candidate(candidate(), [Deal()], published=date(2026, 2, 1))

    assert (match.action, match.deal_id) == ("source", "openai-oracle-cloud-2026")
    assert isinstance(events_for(candidate(), match, URL)[0], SourceAdded)


def test_a_status_further_along_becomes_a_status_change() -> None:
    match = match_candidate(candidate(status="signed"), [Deal()], published=date(2026, 2, 1))

    payloads = events_for(candidate(status="signed"), match, URL)
    assert match.action == "update"
    assert [type(p) for p in payloads] == [DealStatusChanged]
    assert payloads[0].status == "signed"  # type: ignore[attr-defined]


def test_a_status_lower_on_the_ladder_is_not_proposed_as_a_step_back() -> None:
    match = match_candidate(candidate(status="rumored"), [Deal()], published=date(2026, 2, 1))

    assert match.action == "source"


def test_a_figure_beyond_rounding_but_within_tolerance_revises_the_terms() -> None:
    match = match_candidate(candidate(capacity_mw=1_500), [Deal()], published=date(2026, 2, 1))

    payloads = events_for(candidate(capacity_mw=1_500), match, URL)
    assert [type(p) for p in payloads] == [DealTermsRevised]
    assert payloads[0].capacity_mw == 1_500  # type: ignore[attr-defined]


def test_a_missing_figure_on_the_candidate_still_matches() -> None:
    match = match_candidate(candidate(capacity_mw=None), [Deal()])

    assert match.deal_id == "openai-oracle-cloud-2026"


def test_a_figure_far_outside_tolerance_is_another_deal() -> None:
    match = match_candidate(candidate(capacity_mw=5_000), [Deal()], published=date(2026, 2, 1))

    assert match.is_new
    assert match.deal_id == "openai-oracle-cloud-contract-2026"


def test_no_shared_counterparty_is_another_deal() -> None:
    other = candidate(counterparties=(Counterparty(party="microsoft", role="provider"),))

    assert match_candidate(other, [Deal()]).is_new


def test_another_lab_is_another_deal() -> None:
    assert match_candidate(candidate(), [Deal(lab="anthropic")]).is_new


def test_an_incompatible_kind_is_another_deal() -> None:
    assert match_candidate(candidate(kind="chip_purchase"), [Deal()]).is_new


def test_a_compatible_kind_matches() -> None:
    match = match_candidate(candidate(kind="capacity_partnership"), [Deal()])

    assert not match.is_new


def test_an_article_long_before_the_first_report_is_another_deal() -> None:
    assert match_candidate(candidate(), [Deal()], published=date(2025, 6, 1)).is_new


def test_an_article_older_than_the_latest_event_only_corroborates() -> None:
    later = Deal(last_event_at=datetime(2026, 3, 1, tzinfo=UTC))

    match = match_candidate(candidate(status="signed"), [later], published=date(2026, 2, 1))

    assert match.action == "source"


def test_the_best_fitting_of_two_deals_is_chosen() -> None:
    small = Deal(deal_id="small", capacity_mw=600)
    exact = Deal(deal_id="exact", capacity_mw=1_000)

    assert match_candidate(candidate(), [small, exact]).deal_id == "exact"


def test_a_new_deal_id_is_deduplicated() -> None:
    taken = {"openai-oracle-cloud-contract-2026", "openai-oracle-cloud-contract-2026-2"}

    deal_id = new_deal_id(candidate(), date(2026, 3, 1), taken)

    assert deal_id == "openai-oracle-cloud-contract-2026-3"


def test_a_new_deal_becomes_a_deal_reported_with_a_title() -> None:
    match = match_candidate(candidate(), [], published=date(2026, 3, 1))

    payloads = events_for(candidate(), match, URL, party_names={"openai": "OpenAI"})
    assert isinstance(payloads[0], DealReported)
    assert payloads[0].title == "OpenAI / oracle: cloud contract"


def test_a_new_counterparty_is_added_to_the_parties_by_a_revision() -> None:
    both = candidate(
        counterparties=(
            Counterparty(party="oracle", role="provider"),
            Counterparty(party="nvidia", role="chip_supplier"),
        )
    )

    match = match_candidate(both, [Deal()])

    parties = [c.party for c in match.revision["counterparties"]]  # type: ignore[attr-defined]
    assert parties == ["oracle", "nvidia"]
