"""Reviewing feed candidates (Discord-free): list the pending ones, accept or reject one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from bot.errors import UserInputError
from events.envelope import NewEvent, RecordedEvent
from events.matching import Match, events_for, match_candidate
from events.parties import default_registry
from events.payloads import (
    CandidateAccepted,
    CandidateDeal,
    CandidateProposed,
    CandidateRejected,
)
from store.errors import ConcurrencyError, StoreError
from store.log import EventStore
from store.queries import Queries

log = logging.getLogger(__name__)

DECISIONS = ("CandidateAccepted", "CandidateRejected")


class ReviewError(UserInputError):
    """Raised when a candidate cannot be accepted or rejected (unknown, or already decided)."""


@dataclass(frozen=True)
class PendingCandidate:
    """A candidate that waits for an analyst: its stream, when it was proposed, what it says."""

    stream_id: str
    proposed: RecordedEvent
    payload: CandidateProposed

    @property
    def short_id(self) -> str:
        return self.stream_id.removeprefix("candidate:")[:12]


@dataclass(frozen=True)
class Decision:
    """What accept or reject wrote."""

    stream_id: str
    action: str
    deal_id: str | None
    events: tuple[RecordedEvent, ...]


def pending_candidates(store: EventStore) -> list[PendingCandidate]:
    """CandidateProposed streams with no CandidateAccepted or CandidateRejected, oldest first."""
    proposed: dict[str, RecordedEvent] = {}
    decided: set[str] = set()
    for event in store.read_all():
        if not event.stream_id.startswith("candidate:"):
            continue
        if event.type == "CandidateProposed":
            proposed.setdefault(event.stream_id, event)
        elif event.type in DECISIONS:
            decided.add(event.stream_id)
    return [
        PendingCandidate(stream_id=s, proposed=e, payload=e.payload)  # type: ignore[arg-type]
        for s, e in proposed.items()
        if s not in decided
    ]


def resolve_stream(store: EventStore, candidate: str) -> str:
    """The candidate stream an analyst means: a full `candidate:<hash>` or a unique prefix."""
    if candidate.startswith("candidate:") and store.stream_version(candidate) > 0:
        return candidate
    prefix = "candidate:" + candidate.removeprefix("candidate:")
    hits = sorted(
        {
            e.stream_id
            for e in store.read_all()
            if e.type == "CandidateProposed" and e.stream_id.startswith(prefix)
        }
    )
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise ReviewError(f"no candidate {candidate!r}; `computewatch review` lists the pending")
    raise ReviewError(f"{candidate!r} is ambiguous: {len(hits)} candidates start with it")


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
    deals = Queries(store).counting()
    if forced is not None:
        deals = [d for d in deals if d.deal_id == forced]
        if not deals:
            raise UserInputError(f"there is no deal {forced!r} to attach this candidate to")
        match = match_candidate(deal, deals, published=proposed.published)
        if match.is_new:
            raise UserInputError(f"the candidate does not fit deal {forced!r} (lab or parties)")
    else:
        match = match_candidate(
            deal, deals, published=proposed.published, taken_ids=store.deal_ids()
        )
    return deal, match


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
        _load(store, candidate_stream)
        raise ReviewError(str(exc)) from exc
    return Decision(
        stream_id=candidate_stream, action="rejected", deal_id=None, events=result.recorded
    )
