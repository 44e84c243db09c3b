"""Factories for tests: valid events of every type with fictional deals between registry parties.

The party registry only knows real organisations, so the parties are real slugs ('openai',
'oracle', ...) while the deals, sources and amounts are made up (`acme-cloud-1`, example.com).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from events.envelope import NewEvent, RecordedEvent
from events.payloads import (
    AlertFired,
    AlertRuleAdded,
    AlertRuleRemoved,
    CandidateAccepted,
    CandidateDeal,
    CandidatePosted,
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
    DigestClaimed,
    DigestPosted,
    EventRetracted,
    SourceAdded,
)
from store.clock import ManualClock

JAN_01 = datetime(2026, 1, 1, tzinfo=UTC)
JAN_11 = datetime(2026, 1, 11, tzinfo=UTC)
JAN_31 = datetime(2026, 1, 31, tzinfo=UTC)
FEB_01 = datetime(2026, 2, 1, tzinfo=UTC)
FEB_02 = datetime(2026, 2, 2, tzinfo=UTC)
MAR_01 = datetime(2026, 3, 1, tzinfo=UTC)

# What the store's clock reads unless a test moves it; every default occurred_at is before it.
CLOCK_START = MAR_01
DEFAULT_OCCURRED_AT = JAN_11
DEFAULT_ACTOR = "cli"


def source_for(deal: str) -> str:
    return f"https://news.example.com/{deal}"


def manual_clock(start: datetime = CLOCK_START) -> ManualClock:
    """A clock for the store's recorded_at that moves only when the test moves it."""
    return ManualClock(start)


def _envelope(
    stream_id: str,
    payload: Any,
    *,
    occurred_at: datetime | None,
    source_url: str | None,
    idempotency_key: str | None,
    expected_version: int | None,
    event_id: UUID | None = None,
    actor: str = DEFAULT_ACTOR,
) -> NewEvent:
    fields: dict[str, Any] = {
        "stream_id": stream_id,
        "payload": payload,
        "occurred_at": occurred_at or DEFAULT_OCCURRED_AT,
        "actor": actor,
        "source_url": source_url,
        "idempotency_key": idempotency_key,
        "expected_version": expected_version,
    }
    if event_id is not None:
        fields["event_id"] = event_id
    return NewEvent(**fields)


def make_deal_reported(
    deal: str = "acme-cloud-1",
    *,
    lab: str = "openai",
    kind: str = "cloud_contract",
    status: str = "signed",
    counterparties: tuple[tuple[str, str], ...] = (("oracle", "provider"),),
    capacity_mw: float | None = 1_000,
    value_usd: float | None = None,
    chips: tuple[str, str | None, int | None] | None = None,
    term_years: float | None = None,
    online_from: str | None = None,
    title: str | None = None,
    occurred_at: datetime | None = None,
    source_url: str | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
    event_id: UUID | None = None,
) -> NewEvent:
    """A DealReported event on stream deal:<deal>, sourced from a made-up news URL."""
    payload = DealReported(
        lab=lab,
        kind=kind,
        status=status,
        counterparties=tuple(Counterparty(party=p, role=r) for p, r in counterparties),
        capacity_mw=capacity_mw,
        value_usd=value_usd,
        chips=Chips(vendor=chips[0], family=chips[1], count=chips[2]) if chips else None,
        term_years=term_years,
        online_from=online_from,
        title=title or f"{lab} compute deal {deal}",
    )
    return _envelope(
        f"deal:{deal}",
        payload,
        occurred_at=occurred_at,
        source_url=source_url or source_for(deal),
        idempotency_key=idempotency_key,
        expected_version=expected_version,
        event_id=event_id,
    )


def make_terms_revision(
    deal: str = "acme-cloud-1",
    *,
    occurred_at: datetime | None = None,
    source_url: str | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
    **terms: Any,
) -> NewEvent:
    """A DealTermsRevised event; `terms` are the payload fields (capacity_mw=2_000, ...)."""
    if "counterparties" in terms and terms["counterparties"] is not None:
        terms["counterparties"] = tuple(
            Counterparty(party=p, role=r) for p, r in terms["counterparties"]
        )
    return _envelope(
        f"deal:{deal}",
        DealTermsRevised(**terms),
        occurred_at=occurred_at,
        source_url=source_url or source_for(deal),
        idempotency_key=idempotency_key,
        expected_version=expected_version,
    )


def make_status_change(
    deal: str = "acme-cloud-1",
    status: str = "operational",
    *,
    reason: str | None = None,
    occurred_at: datetime | None = None,
    source_url: str | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
) -> NewEvent:
    return _envelope(
        f"deal:{deal}",
        DealStatusChanged(status=status, reason=reason),
        occurred_at=occurred_at,
        source_url=source_url or source_for(deal),
        idempotency_key=idempotency_key,
        expected_version=expected_version,
    )


def make_capacity_online(
    deal: str = "acme-cloud-1",
    mw: float | None = 250,
    *,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
) -> NewEvent:
    return _envelope(
        f"deal:{deal}",
        CapacityCameOnline(mw=mw),
        occurred_at=occurred_at,
        source_url=source_for(deal),
        idempotency_key=idempotency_key,
        expected_version=expected_version,
    )


def make_counterparty_joined(
    deal: str = "acme-cloud-1",
    party: str = "coreweave",
    role: str = "provider",
    *,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
) -> NewEvent:
    return _envelope(
        f"deal:{deal}",
        CounterpartyJoined(party=party, role=role),
        occurred_at=occurred_at,
        source_url=source_for(deal),
        idempotency_key=idempotency_key,
        expected_version=expected_version,
    )


def make_deals_linked(
    deal: str = "acme-cloud-2",
    other_deal: str = "acme-cloud-1",
    relation: str = "part_of",
    *,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> NewEvent:
    return _envelope(
        f"deal:{deal}",
        DealsLinked(relation=relation, other_deal=other_deal),
        occurred_at=occurred_at,
        source_url=source_for(deal),
        idempotency_key=idempotency_key,
        expected_version=None,
    )


def make_source_added(
    deal: str = "acme-cloud-1",
    *,
    source_url: str = "seed:acme-cloud-1.txt",
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> NewEvent:
    return _envelope(
        f"deal:{deal}",
        SourceAdded(note="corroborated"),
        occurred_at=occurred_at,
        source_url=source_url,
        idempotency_key=idempotency_key,
        expected_version=None,
    )


def make_retraction(
    target: NewEvent | RecordedEvent,
    reason: str = "misread the article",
    *,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    expected_version: int | None = None,
) -> NewEvent:
    """An EventRetracted of `target`, on the target's own stream (where the store wants it)."""
    return _envelope(
        target.stream_id,
        EventRetracted(event_id=target.event_id, reason=reason),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=idempotency_key,
        expected_version=expected_version,
    )


def make_candidate_proposed(
    candidate: str = "c0ffee", *, lab: str = "xai", occurred_at: datetime | None = None
) -> NewEvent:
    deal = CandidateDeal(
        lab=lab,
        counterparties=(Counterparty(party="oracle", role="landlord"),),
        kind="datacenter_lease",
        status="loi",
        capacity_mw=1_200,
        evidence="letters of intent for more than 1 GW",
    )
    payload = CandidateProposed(
        article_url=f"https://news.example.com/articles/{candidate}",
        article_title="Lab signs letters of intent for leased data centers",
        feed_id="example-feed",
        published=date(2026, 1, 10),
        deal=deal,
    )
    return _envelope(
        f"candidate:{candidate}",
        payload,
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=None,
        expected_version=None,
        actor="feed:example-feed",
    )


def make_candidate_accepted(
    candidate: str = "c0ffee", deal: str = "acme-cloud-1", *, occurred_at: datetime | None = None
) -> NewEvent:
    return _envelope(
        f"candidate:{candidate}",
        CandidateAccepted(deal_id=deal, note="checked"),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=None,
        expected_version=None,
        actor="discord:123456789012345678",
    )


def make_candidate_rejected(
    candidate: str = "c0ffee", *, occurred_at: datetime | None = None
) -> NewEvent:
    return _envelope(
        f"candidate:{candidate}",
        CandidateRejected(reason="not a compute deal"),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=None,
        expected_version=None,
        actor="discord:123456789012345678",
    )


def make_candidate_posted(
    candidate: str = "c0ffee",
    channel: str = "1100000000000000012",
    *,
    occurred_at: datetime | None = None,
) -> NewEvent:
    return _envelope(
        f"candidate:{candidate}",
        CandidatePosted(channel_id=channel, message_id="1200000000000000002"),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=f"candidate:{candidate}:posted",
        expected_version=None,
        actor="system",
    )


def make_digest_posted(
    channel: str = "1100000000000000011",
    week: str = "2026-W02",
    *,
    occurred_at: datetime | None = None,
) -> NewEvent:
    return _envelope(
        f"digest:{channel}",
        DigestPosted(channel_id=channel, week=week, message_id="1200000000000000001"),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=f"digest:{channel}:{week}",
        expected_version=None,
        actor="system",
    )


def make_digest_claimed(
    channel: str = "1100000000000000011",
    week: str = "2026-W02",
    *,
    claimant: str = "worker-1",
    occurred_at: datetime | None = None,
) -> NewEvent:
    return _envelope(
        f"digest:{channel}",
        DigestClaimed(channel_id=channel, week=week, claimant=claimant),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=f"digest-claim:{channel}:{week}",
        expected_version=None,
        actor="system",
    )


def make_alert_rule_added(
    rule: str = "openai-1gw",
    *,
    lab: str | None = "openai",
    threshold: float = 1.0,
    occurred_at: datetime | None = None,
) -> NewEvent:
    payload = AlertRuleAdded(
        rule_id=rule,
        channel_id="1100000000000000010",
        lab=lab,
        metric="committed_gw",
        op=">=",
        threshold=threshold,
    )
    return _envelope(
        f"alert:{rule}",
        payload,
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=None,
        expected_version=None,
        actor="discord:123456789012345678",
    )


def make_alert_rule_removed(
    rule: str = "openai-1gw", *, occurred_at: datetime | None = None
) -> NewEvent:
    return _envelope(
        f"alert:{rule}",
        AlertRuleRemoved(rule_id=rule),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=None,
        expected_version=None,
        actor="discord:123456789012345678",
    )


def make_alert_fired(
    rule: str = "openai-1gw", value: float = 1.2, *, occurred_at: datetime | None = None
) -> NewEvent:
    return _envelope(
        f"alert:{rule}",
        AlertFired(rule_id=rule, value=value, crossing_key=f"{rule}:2026-W02"),
        occurred_at=occurred_at,
        source_url=None,
        idempotency_key=None,
        expected_version=None,
        actor="system",
    )


def one_event_of_every_type() -> list[NewEvent]:
    """One valid event of each payload type. The last one retracts the first, so the store takes
    all but the last in one batch and the last in a later one."""
    reported = make_deal_reported("acme-cloud-1")
    return [
        reported,
        make_deal_reported(
            "acme-cloud-2",
            lab="anthropic",
            kind="datacenter_lease",
            counterparties=(("google", "guarantor"), ("coreweave", "landlord")),
            value_usd=3e9,
            chips=("nvidia", "GB200", 100_000),
            term_years=5,
            online_from="2026-09",
            status="loi",
        ),
        make_terms_revision("acme-cloud-1", capacity_mw=1_500, value_usd=2e10),
        make_status_change("acme-cloud-1", "operational", reason="first hall is live"),
        make_capacity_online("acme-cloud-1", 300),
        make_counterparty_joined("acme-cloud-1", "amazon", "financier"),
        make_deals_linked("acme-cloud-2", "acme-cloud-1", "overlaps"),
        make_source_added("acme-cloud-1"),
        make_candidate_proposed(),
        make_candidate_posted(),
        make_candidate_accepted(),
        make_candidate_rejected("d00d"),
        make_digest_claimed(),
        make_digest_posted(),
        make_alert_rule_added(),
        make_alert_fired(),
        make_alert_rule_removed(),
        make_retraction(reported),
    ]


def days_after(start: datetime, days: float) -> datetime:
    return start + timedelta(days=days)


def db_file(directory: Path | str) -> Path:
    return Path(directory) / "log.duckdb"
