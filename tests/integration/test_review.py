"""Reviewing candidates: accept writes the deal events atomically, reject writes none."""

from __future__ import annotations

from datetime import date

import pytest

from bot import review
from events.envelope import NewEvent
from events.payloads import CandidateDeal, CandidateProposed, Counterparty
from store.log import EventStore
from store.queries import Queries
from tests.factories import JAN_11, make_deal_reported

ARTICLE = "https://news.example.com/openai-oracle-2"


def propose(
    store: EventStore,
    name: str = "c1",
    *,
    status: str = "signed",
    capacity_mw: float = 1_000,
    url: str = ARTICLE,
) -> str:
    deal = CandidateDeal(
        lab="openai",
        counterparties=(Counterparty(party="oracle", role="provider"),),
        kind="cloud_contract",
        status=status,
        capacity_mw=capacity_mw,
        evidence="OpenAI signed a cloud contract with Oracle for 1 GW.",
    )
    stream = f"candidate:{name}"
    store.append(
        [
            NewEvent(
                stream_id=stream,
                occurred_at=JAN_11,
                actor="feed:news.example.com",
                payload=CandidateProposed(
                    article_url=url,
                    article_title="OpenAI rents from Oracle",
                    published=date(2026, 1, 20),
                    deal=deal,
                ),
            )
        ]
    )
    return stream


def test_accepting_a_new_deal_makes_it_count_with_actor_and_source(store: EventStore) -> None:
    stream = propose(store)

    decision = review.accept(store, stream, "cli")

    deals = Queries(store).counting()
    assert [d.deal_id for d in deals] == ["openai-oracle-cloud-contract-2026"]
    assert deals[0].contracted_mw == 1_000
    reported = store.read_stream("deal:openai-oracle-cloud-contract-2026")[0]
    assert (reported.type, reported.actor, reported.source_url) == ("DealReported", "cli", ARTICLE)
    assert [e.type for e in decision.events] == ["DealReported", "CandidateAccepted"]
    assert review.pending_candidates(store) == []


def test_accepting_news_of_a_known_deal_updates_it(store: EventStore) -> None:
    store.append([make_deal_reported("openai-oracle-1", status="loi")])
    stream = propose(store, status="signed")

    decision = review.accept(store, stream, "discord:42")

    assert decision.deal_id == "openai-oracle-1"
    assert [e.type for e in store.read_stream("deal:openai-oracle-1")] == [
        "DealReported",
        "DealStatusChanged",
    ]
    assert Queries(store).counting()[0].status == "signed"
    assert len(Queries(store).counting()) == 1


def test_rejecting_writes_no_deal_event(store: EventStore) -> None:
    stream = propose(store)

    review.reject(store, stream, "cli", "not a compute deal")

    assert store.deal_ids() == []
    assert [e.type for e in store.read_stream(stream)] == ["CandidateProposed", "CandidateRejected"]
    assert review.pending_candidates(store) == []


def test_accepting_twice_is_refused_and_writes_nothing(store: EventStore) -> None:
    stream = propose(store)
    review.accept(store, stream, "cli")
    head = store.head

    with pytest.raises(review.ReviewError, match="already accepted"):
        review.accept(store, stream, "cli")
    assert store.head == head


def test_accepting_after_a_reject_is_refused(store: EventStore) -> None:
    stream = propose(store)
    review.reject(store, stream, "cli", "duplicate")

    with pytest.raises(review.ReviewError, match="rejected"):
        review.accept(store, stream, "cli")
    assert store.deal_ids() == []


def test_two_candidates_of_one_new_deal_make_one_deal(store: EventStore) -> None:
    first = propose(store, "c1")
    second = propose(store, "c2", url="https://other.example.com/same-deal")

    review.accept(store, first, "cli")
    decision = review.accept(store, second, "cli")

    assert decision.action == "source"
    assert store.deal_ids() == ["openai-oracle-cloud-contract-2026"]


def test_pending_lists_only_undecided_candidates(store: EventStore) -> None:
    propose(store, "c1")
    decided = propose(store, "c2")
    review.reject(store, decided, "cli", "no")

    assert [c.stream_id for c in review.pending_candidates(store)] == ["candidate:c1"]


def test_edits_override_the_candidate(store: EventStore) -> None:
    stream = propose(store)

    review.accept(store, stream, "cli", {"status": "loi", "capacity_mw": 800})

    deal = Queries(store).counting()[0]
    assert (deal.status, deal.capacity_mw) == ("loi", 800)
