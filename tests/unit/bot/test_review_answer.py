"""What a review message says about a candidate (pure rendering, no Discord)."""

from __future__ import annotations

from datetime import date

from bot.render import render_text
from bot.review import candidate_answer
from events.payloads import CandidateDeal, CandidateProposed, Chips, Counterparty

NAMES = {"openai": "OpenAI", "oracle": "Oracle", "nvidia": "NVIDIA"}


def proposal(**changes: object) -> CandidateProposed:
    deal = CandidateDeal(
        lab="openai",
        counterparties=(Counterparty(party="oracle", role="provider"),),
        kind="cloud_contract",
        status="loi",
        capacity_mw=1_200,
        value_usd=3e10,
        chips=Chips(vendor="nvidia", family="gb200", count=100_000),
        evidence="OpenAI signed a letter of intent with Oracle for 1.2 GW.",
    )
    fields: dict[str, object] = {
        "article_url": "https://news.example.com/openai-oracle",
        "article_title": "OpenAI and Oracle",
        "published": date(2026, 1, 20),
        "deal": deal,
    }
    return CandidateProposed.model_validate(fields | changes)


def test_the_card_shows_the_deal_the_evidence_and_the_article() -> None:
    answer = candidate_answer("candidate:" + "ab" * 32, proposal(), NAMES)

    facts = {f.name: f.value for f in answer.facts}
    assert answer.title == "Candidate: OpenAI cloud contract with Oracle (loi)"
    assert answer.summary == "> OpenAI signed a letter of intent with Oracle for 1.2 GW."
    assert facts["Capacity"] == "1.2 GW"
    assert facts["Value"] == "$30B"
    assert facts["Chips"] == "100,000 NVIDIA gb200"
    assert facts["Accepting makes"] == "a new deal"
    assert facts["Candidate"] == "`abababababab`"
    assert [s.url for s in answer.sources] == ["https://news.example.com/openai-oracle"]


def test_the_card_says_which_deal_an_update_would_change() -> None:
    payload = proposal(action="update", matched_deal="openai-oracle-2025")

    answer = candidate_answer("candidate:c1", payload, NAMES)

    assert "an update of `openai-oracle-2025`" in render_text(answer)
