"""Reviewing feed candidates (Discord-free): list the pending ones, accept or reject one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from bot.answers import Answer, Fact, Source
from bot.errors import UserInputError
from bot.formats import gw, usd
from events.envelope import NewEvent, RecordedEvent
from events.matching import Match, events_for, match_candidate
from events.parties import default_registry
from events.payloads import (
    CandidateAccepted,
    CandidateDeal,
    CandidatePosted,
    CandidateProposed,
    CandidateRejected,
)
from store.errors import ConcurrencyError, StoreError
from store.log import EventStore
from store.queries import Queries
from store.review_queries import candidate_streams, pending_candidate_events

log = logging.getLogger(__name__)

DECISIONS = ("CandidateAccepted", "CandidateRejected")


class ReviewError(UserInputError):
    """Raised when a candidate cannot be accepted or rejected (unknown, or already decided)."""


@dataclass(frozen=True)
class PendingCandidate:
    """A candidate that waits for an analyst: its stream, when it was proposed, what it says,
    and where it was posted for review (None until the bot posts it)."""

    stream_id: str
    proposed: RecordedEvent
    payload: CandidateProposed
    posted: CandidatePosted | None = None

    @property
    def short_id(self) -> str:
        return short_id(self.stream_id)


def short_id(stream_id: str) -> str:
    """The id analysts type: the first 12 characters after `candidate:`."""
    return stream_id.removeprefix("candidate:")[:12]


@dataclass(frozen=True)
class CandidateRecord:
    """A candidate stream as it stands: the proposal, its review post, its decision if any."""

    stream_id: str
    events: tuple[RecordedEvent, ...]
    payload: CandidateProposed
    posted: CandidatePosted | None
    decision: RecordedEvent | None


@dataclass(frozen=True)
class Decision:
    """What accept or reject wrote."""

    stream_id: str
    action: str
    deal_id: str | None
    events: tuple[RecordedEvent, ...]


def pending_candidates(store: EventStore) -> list[PendingCandidate]:
    """CandidateProposed streams with no CandidateAccepted or CandidateRejected, oldest first."""
    pending = []
    for stream_id, events in pending_candidate_events(store).items():
        proposed = next(e for e in events if isinstance(e.payload, CandidateProposed))
        posts = [e.payload for e in events if isinstance(e.payload, CandidatePosted)]
        pending.append(
            PendingCandidate(
                stream_id=stream_id,
                proposed=proposed,
                payload=proposed.payload,  # type: ignore[arg-type]
                posted=posts[-1] if posts else None,
            )
        )
    return pending


def load_candidate(store: EventStore, stream_id: str) -> CandidateRecord:
    """The candidate stream's proposal, last review post and decision; ReviewError if unknown."""
    events = store.read_stream(stream_id)
    if not events or not isinstance(events[0].payload, CandidateProposed):
        raise ReviewError(f"no candidate {stream_id!r}")
    posts = [e.payload for e in events if isinstance(e.payload, CandidatePosted)]
    decisions = [e for e in events if e.type in DECISIONS]
    return CandidateRecord(
        stream_id=stream_id,
        events=tuple(events),
        payload=events[0].payload,
        posted=posts[-1] if posts else None,  # type: ignore[arg-type]
        decision=decisions[0] if decisions else None,
    )


def posted_event(stream_id: str, channel_id: int, message_id: int, now: datetime) -> NewEvent:
    """The CandidatePosted event that remembers the review message of a candidate."""
    return NewEvent(
        stream_id=stream_id,
        payload=CandidatePosted(channel_id=str(channel_id), message_id=str(message_id)),
        occurred_at=now,
        actor="system",
    )


def resolve_stream(store: EventStore, candidate: str) -> str:
    """The candidate stream an analyst means: a full `candidate:<hash>` or a unique prefix."""
    if candidate.startswith("candidate:") and store.stream_version(candidate) > 0:
        return candidate
    prefix = "candidate:" + candidate.removeprefix("candidate:")
    hits = candidate_streams(store, prefix, limit=2)
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ReviewError(f"no candidate {candidate!r}; /review lists the pending ones")
    raise ReviewError(f"{candidate!r} is ambiguous: several candidates start with it")


def _load(store: EventStore, stream_id: str) -> tuple[list[RecordedEvent], CandidateProposed]:
    events = store.read_stream(stream_id)
    if not events or not isinstance(events[0].payload, CandidateProposed):
        raise ReviewError(f"no candidate {stream_id!r}")
    for event in events:
        if isinstance(event.payload, CandidateAccepted):
            raise ReviewError(
                f"this candidate was already accepted by {event.actor} on "
                f"{event.recorded_at:%Y-%m-%d} (deal {event.payload.deal_id}); nothing was written"
            )
        if isinstance(event.payload, CandidateRejected):
            raise ReviewError(
                f"this candidate was rejected by {event.actor} on {event.recorded_at:%Y-%m-%d}"
                f"{': ' + event.payload.reason if event.payload.reason else ''}; "
                "nothing was written"
            )
    return events, events[0].payload


def plan_accept(
    store: EventStore, stream_id: str, edits: Mapping[str, object] | None = None
) -> tuple[CandidateDeal, Match]:
    """The candidate as edited and how it matches the log now (the log may have moved on)."""
    _, proposed = _load(store, stream_id)
    edits = dict(edits or {})
    forced = edits.pop("deal_id", None)
    try:
        deal = CandidateDeal.model_validate({**proposed.deal.model_dump(), **edits})
    except ValidationError as exc:
        raise UserInputError(f"the edits are not valid: {exc.errors()[0]['msg']}") from exc
    if forced is not None:
        lab = store.lab_of(forced)
        deals = [d for d in Queries(store).counting([lab]) if d.deal_id == forced] if lab else []
        if not deals:
            raise UserInputError(f"there is no deal {forced!r} to attach this candidate to")
        match = match_candidate(deal, deals, published=proposed.published)
        if match.is_new:
            raise UserInputError(f"the candidate does not fit deal {forced!r} (lab or parties)")
    else:
        # Only a deal of the candidate's own lab can match it: the others are not read.
        match = match_candidate(
            deal,
            Queries(store).counting([deal.lab]),
            published=proposed.published,
            taken_ids=DealIdsOf(store),
        )
    return deal, match


class DealIdsOf:
    """The deal ids of a store as a container (`id in ids`) asked of the store, not listed."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def __contains__(self, deal_id: object) -> bool:
        return isinstance(deal_id, str) and self.store.lab_of(deal_id) is not None


class _CandidateMovedError(Exception):
    """Raised when an event that is no decision (its review post) landed on the candidate's
    stream between reading and writing: the decision is simply made again."""


# A review post may land between reading a candidate and deciding it; that is no conflict.
ATTEMPTS = 3


def accept(
    store: EventStore,
    candidate_stream: str,
    actor: str,
    edits: Mapping[str, object] | None = None,
) -> Decision:
    """Write the deal events the candidate leads to and CandidateAccepted, in one atomic append.

    `edits` overrides fields of the candidate (status, capacity_mw, ...); `deal_id` in it attaches
    the candidate to that deal. Accepting a decided candidate raises ReviewError.
    """
    for _ in range(ATTEMPTS - 1):
        try:
            return _accept(store, candidate_stream, actor, edits)
        except _CandidateMovedError:
            continue
    try:
        return _accept(store, candidate_stream, actor, edits)
    except _CandidateMovedError as exc:
        raise ReviewError(f"{candidate_stream} keeps changing; try again") from exc


def _accept(
    store: EventStore,
    candidate_stream: str,
    actor: str,
    edits: Mapping[str, object] | None,
) -> Decision:
    events, proposed = _load(store, candidate_stream)
    version = events[-1].version
    deal, match = plan_accept(store, candidate_stream, edits)
    now = store.clock.now()
    occurred = now
    if proposed.published is not None:
        day = datetime(
            proposed.published.year, proposed.published.month, proposed.published.day, tzinfo=UTC
        )
        occurred = min(day, now)
    if not match.is_new:
        # Never date news of a deal before the deal itself: the fold orders by valid time.
        known = [d for d in Queries(store).counting() if d.deal_id == match.deal_id]
        if known:
            occurred = max(occurred, known[0].first_reported_at)
    names = {p.slug: p.name for p in default_registry()}
    deal_stream = f"deal:{match.deal_id}"
    deal_version = store.stream_version(deal_stream)
    batch: list[NewEvent] = []
    try:
        for i, payload in enumerate(
            events_for(
                deal,
                match,
                proposed.article_url,
                article_title=proposed.article_title,
                party_names=names,
            )
        ):
            batch.append(
                NewEvent(
                    stream_id=deal_stream,
                    payload=payload,
                    occurred_at=occurred,
                    actor=actor,
                    source_url=proposed.article_url,
                    source_title=proposed.article_title,
                    idempotency_key=f"{candidate_stream}:accept:{i}",
                    expected_version=deal_version + i,
                )
            )
    except ValidationError as exc:
        raise ReviewError(
            f"the candidate cannot become deal events: {exc.errors()[0]['msg']}"
        ) from exc
    batch.append(
        NewEvent(
            stream_id=candidate_stream,
            payload=CandidateAccepted(deal_id=match.deal_id, note=f"{match.action}"),
            occurred_at=now,
            actor=actor,
            expected_version=version,
        )
    )
    try:
        result = store.append(batch)
    except ConcurrencyError as exc:
        if exc.stream_id == candidate_stream:
            _load(store, candidate_stream)  # raises the clear "already accepted/rejected"
            raise _CandidateMovedError(candidate_stream) from exc
        raise ReviewError(f"{exc} (someone changed {exc.stream_id} meanwhile)") from exc
    except StoreError as exc:
        raise ReviewError(f"nothing was written: {exc}") from exc
    log.info("%s accepted %s as %s of %s", actor, candidate_stream, match.action, match.deal_id)
    return Decision(
        stream_id=candidate_stream,
        action=match.action,
        deal_id=match.deal_id,
        events=result.recorded,
    )


def reject(store: EventStore, candidate_stream: str, actor: str, reason: str | None) -> Decision:
    """Write CandidateRejected only; rejecting a decided candidate raises ReviewError."""
    for _ in range(ATTEMPTS - 1):
        try:
            return _reject(store, candidate_stream, actor, reason)
        except _CandidateMovedError:
            continue
    try:
        return _reject(store, candidate_stream, actor, reason)
    except _CandidateMovedError as exc:
        raise ReviewError(f"{candidate_stream} keeps changing; try again") from exc


def _reject(store: EventStore, candidate_stream: str, actor: str, reason: str | None) -> Decision:
    events, _ = _load(store, candidate_stream)
    event = NewEvent(
        stream_id=candidate_stream,
        payload=CandidateRejected(reason=reason or None),
        occurred_at=store.clock.now(),
        actor=actor,
        expected_version=events[-1].version,
    )
    try:
        result = store.append([event])
    except ConcurrencyError as exc:
        _load(store, candidate_stream)  # raises the clear "already accepted/rejected"
        raise _CandidateMovedError(candidate_stream) from exc
    return Decision(
        stream_id=candidate_stream, action="rejected", deal_id=None, events=result.recorded
    )


# -- rendering (pure) ------------------------------------------------------------------------

ACTIONS = {"new_deal": "a new deal", "update": "an update of", "source": "a source for"}


def _party(names: Mapping[str, str], slug: str) -> str:
    return names.get(slug, slug)


def candidate_title(payload: CandidateProposed, names: Mapping[str, str]) -> str:
    """'OpenAI cloud contract with Oracle (signed)'."""
    deal = payload.deal
    others = ", ".join(_party(names, c.party) for c in deal.counterparties)
    kind = deal.kind.value.replace("_", " ")
    return (
        f"{_party(names, deal.lab)} {kind}"
        + (f" with {others}" if others else "")
        + f" ({deal.status.value})"
    )


def candidate_answer(
    stream_id: str, payload: CandidateProposed, names: Mapping[str, str]
) -> Answer:
    """What a candidate says, for an analyst to judge: the deal's fields, the evidence sentence,
    what accepting it would do, and the article."""
    deal = payload.deal
    target = (
        "a new deal"
        if payload.action == "new_deal" or not payload.matched_deal
        else f"{ACTIONS[payload.action]} `{payload.matched_deal}`"
    )
    facts = [
        Fact(name="Lab", value=_party(names, deal.lab)),
        Fact(
            name="Counterparties",
            value=", ".join(
                f"{_party(names, c.party)} ({c.role.value})" for c in deal.counterparties
            )
            or "none named",
        ),
        Fact(name="Kind", value=deal.kind.value.replace("_", " ")),
        Fact(name="Status", value=deal.status.value),
    ]
    if deal.capacity_mw is not None:
        facts.append(Fact(name="Capacity", value=gw(deal.capacity_mw)))
    if deal.value_usd is not None:
        facts.append(Fact(name="Value", value=usd(deal.value_usd)))
    if deal.chips is not None:
        chips = " ".join(
            str(x)
            for x in (
                f"{deal.chips.count:,}" if deal.chips.count else None,
                _party(names, deal.chips.vendor),
                deal.chips.family,
            )
            if x
        )
        facts.append(Fact(name="Chips", value=chips))
    if deal.term_years is not None:
        facts.append(Fact(name="Term", value=f"{deal.term_years:g} years"))
    if deal.online_from is not None:
        facts.append(Fact(name="Online from", value=deal.online_from))
    if deal.location:
        facts.append(Fact(name="Location", value=deal.location))
    facts.append(Fact(name="Accepting makes", value=target, inline=False))
    if payload.published is not None:
        facts.append(Fact(name="Published", value=payload.published.isoformat()))
    facts.append(Fact(name="Candidate", value=f"`{short_id(stream_id)}`"))
    evidence = " ".join(deal.evidence.split())
    return Answer(
        command="review",
        title=f"Candidate: {candidate_title(payload, names)}",
        summary=f"> {evidence}" if evidence else None,
        facts=facts,
        sources=[
            Source(title=payload.article_title or payload.article_url, url=payload.article_url)
        ],
        data={
            "candidate": stream_id,
            "deal": deal.model_dump(mode="json"),
            "action": payload.action,
            "matched_deal": payload.matched_deal,
            "article_url": payload.article_url,
        },
    )


def decision_summary(decision: RecordedEvent, who: str) -> str:
    """'Accepted by <who> on 2026-01-20: deal `x` (update)' or 'Rejected by <who> ...'."""
    day = f"{decision.recorded_at:%Y-%m-%d %H:%M} UTC"
    payload = decision.payload
    if isinstance(payload, CandidateAccepted):
        how = f" ({payload.note})" if payload.note else ""
        return f"Accepted by {who} on {day}: deal `{payload.deal_id}`{how}"
    if isinstance(payload, CandidateRejected):
        why = f": {payload.reason}" if payload.reason else ""
        return f"Rejected by {who} on {day}{why}"
    return f"{decision.type} by {who} on {day}"


def decision_of(result: Decision) -> RecordedEvent:
    """The CandidateAccepted or CandidateRejected event a decision wrote."""
    return next(e for e in result.events if e.type in DECISIONS)
