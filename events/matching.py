"""Matching a deal candidate to the deals in the log: an update of a known deal, or a new deal."""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

from events.extract import DealCandidate
from events.payloads import (
    CandidateDeal,
    Chips,
    Counterparty,
    DealReported,
    DealStatusChanged,
    DealTermsRevised,
    EventPayload,
    SourceAdded,
)
from events.vocabulary import ENDED, LADDER, DealKind, DealStatus

__all__ = [
    "DealLike",
    "Match",
    "events_for",
    "match_candidate",
    "new_deal_id",
]

Action = Literal["new_deal", "update", "source"]
Candidate = DealCandidate | CandidateDeal

# Figures of two reports of one deal differ by rounding ("1 GW" vs "1.2 GW", "$20B" vs
# "$21 billion") but rarely by more than a factor of two; beyond that it is another deal.
MATCH_RATIO = 2.0
# Within this relative difference two figures are the same figure: no revision is proposed.
SAME_FIGURE = 0.05
# An article much older than a deal's first report describes something else (or is old news).
MAX_DAYS_BEFORE_FIRST_REPORT = 60
# A deal last heard of this long before the article is stale: a new deal is more likely.
MAX_YEARS_AFTER_LAST_EVENT = 4
ONLINE_FROM_YEARS = 2
# Kinds that the same deal is reported as, depending on the writer (rent vs partnership, lease
# vs build on a leased site); any other pair of different kinds is two deals.
COMPATIBLE_KINDS: tuple[frozenset[DealKind], ...] = (
    frozenset({DealKind.CLOUD_CONTRACT, DealKind.CAPACITY_PARTNERSHIP}),
    frozenset({DealKind.DATACENTER_LEASE, DealKind.OWNED_BUILD}),
    frozenset({DealKind.INVESTMENT_FOR_COMPUTE, DealKind.CLOUD_CONTRACT}),
)


class DealLike(Protocol):
    """What matching reads of a deal's current state (store.queries.DealCounting fits)."""

    @property
    def deal_id(self) -> str: ...
    @property
    def lab(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def capacity_mw(self) -> float | None: ...
    @property
    def value_usd(self) -> float | None: ...
    @property
    def counterparties(self) -> Sequence[Mapping[str, str]]: ...
    @property
    def first_reported_at(self) -> datetime: ...
    @property
    def last_event_at(self) -> datetime: ...


@dataclass(frozen=True)
class Match:
    """What a candidate is to the log: a new deal (with its generated id) or news of a known one.

    For an update, `status` is the status to move to and `revision` the terms to revise (both
    empty when the candidate only corroborates the deal as it stands: action "source").
    """

    action: Action
    deal_id: str
    status: DealStatus | None = None
    revision: Mapping[str, object] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()

    @property
    def is_new(self) -> bool:
        return self.action == "new_deal"


# -- matching -------------------------------------------------------------------------------


def match_candidate(
    candidate: Candidate,
    deals: Iterable[DealLike],
    *,
    published: date | None = None,
    taken_ids: Container[str] = (),
) -> Match:
    """The best known deal the candidate describes, or a new deal id when none fits.

    A deal fits when it has the same lab, shares a counterparty, has a compatible kind, figures
    within MATCH_RATIO (or one side unknown) and dates that make the article plausible news of it.
    """
    best: tuple[tuple[int, int, int, datetime], DealLike, list[str]] | None = None
    deal_list = list(deals)
    for deal in deal_list:
        reasons = _fit(candidate, deal, published)
        if reasons is None:
            continue
        shared = len(_parties(candidate) & _deal_parties(deal))
        score = (
            shared,
            int(DealKind(deal.kind) is DealKind(candidate.kind)),
            _figures_agree(candidate, deal),
            deal.last_event_at,
        )
        if best is None or score > best[0]:
            best = (score, deal, reasons)
    if best is None:
        taken = _AnyOf({d.deal_id for d in deal_list}, taken_ids)
        return Match(
            action="new_deal",
            deal_id=new_deal_id(candidate, published, taken),
            reasons=("no known deal of this lab, counterparty and kind",),
        )
    _, deal, reasons = best
    stale = published is not None and published < deal.last_event_at.date()
    status = None if stale else _status_move(DealStatus(deal.status), candidate.status)
    revision = {} if stale else _revision(candidate, deal)
    if stale:
        reasons.append("the article predates the deal's latest event: corroboration only")
    action: Action = "update" if status is not None or revision else "source"
    return Match(
        action=action,
        deal_id=deal.deal_id,
        status=status,
        revision=revision,
        reasons=tuple(reasons),
    )


def _fit(candidate: Candidate, deal: DealLike, published: date | None) -> list[str] | None:
    """Why the deal fits the candidate, or None when it does not."""
    if deal.lab != candidate.lab:
        return None
    shared = _parties(candidate) & _deal_parties(deal)
    if not shared:
        return None
    if not kinds_compatible(DealKind(candidate.kind), DealKind(deal.kind)):
        return None
    for name in ("capacity_mw", "value_usd"):
        if not within(getattr(candidate, name), getattr(deal, name), MATCH_RATIO):
            return None
    if published is not None:
        first = deal.first_reported_at.date()
        if (first - published).days > MAX_DAYS_BEFORE_FIRST_REPORT:
            return None
        if (published - deal.last_event_at.date()).days > 365 * MAX_YEARS_AFTER_LAST_EVENT:
            return None
    deal_online = getattr(deal, "online_from", None)
    if candidate.online_from and deal_online:
        if abs(int(candidate.online_from[:4]) - int(str(deal_online)[:4])) > ONLINE_FROM_YEARS:
            return None
    return [
        f"same lab {deal.lab}",
        f"shared counterparty {', '.join(sorted(shared))}",
        f"kind {candidate.kind} fits {deal.kind}",
    ]


def kinds_compatible(a: DealKind, b: DealKind) -> bool:
    """Whether two kinds may be two readings of the same deal."""
    return a is b or any(a in group and b in group for group in COMPATIBLE_KINDS)


def within(a: float | None, b: float | None, ratio: float) -> bool:
    """Whether two positive figures differ by at most `ratio` times (an unknown one fits)."""
    if a is None or b is None or a <= 0 or b <= 0:
        return True
    return max(a, b) / min(a, b) <= ratio


def _figures_agree(candidate: Candidate, deal: DealLike) -> int:
    return sum(
        1
        for name in ("capacity_mw", "value_usd")
        if getattr(candidate, name) is not None
        and within(getattr(candidate, name), getattr(deal, name), 1 + SAME_FIGURE)
    )


def _parties(candidate: Candidate) -> set[str]:
    return {c.party for c in candidate.counterparties}


def _deal_parties(deal: DealLike) -> set[str]:
    return {str(c["party"]) for c in deal.counterparties}


def _status_move(current: DealStatus, reported: DealStatus) -> DealStatus | None:
    """The status a report moves a deal to, or None when it adds nothing.

    A report further along the ladder, an ending, or a shelved deal reported active again moves
    the deal; a report lower on the ladder is usually a writer repeating older news, so it is not
    proposed as a step back (an analyst can still record one).
    """
    if reported == current or current is DealStatus.CANCELLED:
        return None
    if reported in ENDED:
        return reported
    if current is DealStatus.SHELVED:
        return reported
    if LADDER.index(reported) > LADDER.index(current):
        return reported
    return None


def _revision(candidate: Candidate, deal: DealLike) -> dict[str, object]:
    """The terms the candidate adds to or changes in the deal (figures beyond rounding)."""
    revision: dict[str, object] = {}
    for name in ("capacity_mw", "value_usd"):
        new = getattr(candidate, name)
        old = getattr(deal, name)
        if new is not None and (old is None or not within(new, old, 1 + SAME_FIGURE)):
            revision[name] = float(new)
    known = _deal_parties(deal)
    joined = [c for c in candidate.counterparties if c.party not in known]
    if joined:
        current = [
            Counterparty.model_validate({"party": c["party"], "role": c["role"]})
            for c in deal.counterparties
        ]
        revision["counterparties"] = tuple(
            current + [Counterparty(party=c.party, role=c.role) for c in joined]
        )
    if candidate.chips is not None and getattr(deal, "chips", None) is None:
        revision["chips"] = Chips.model_validate(candidate.chips.model_dump())
    for name in ("term_years", "online_from", "location"):
        new = getattr(candidate, name)
        old = getattr(deal, name, None)
        if new is not None and old is None and hasattr(deal, name):
            revision[name] = float(new) if name == "term_years" else new
    return revision


# -- deal ids --------------------------------------------------------------------------------


class _AnyOf:
    """Ids taken in any of several containers (a set, or the store's own lookup)."""

    def __init__(self, *containers: Container[str]) -> None:
        self.containers = containers

    def __contains__(self, item: object) -> bool:
        return any(item in c for c in self.containers)


def new_deal_id(candidate: Candidate, published: date | None, taken: Container[str]) -> str:
    """`lab-counterparty-kind-year`, with -2, -3, ... when that id is taken."""
    parties = [c.party for c in candidate.counterparties]
    parts = [candidate.lab, *parties[:1], DealKind(candidate.kind).value.replace("_", "-")]
    if published is not None:
        parts.append(str(published.year))
    elif candidate.online_from:
        parts.append(candidate.online_from[:4])
    base = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")[:110]
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# -- events ----------------------------------------------------------------------------------


def events_for(
    candidate: Candidate,
    match: Match,
    article_url: str,
    *,
    article_title: str | None = None,
    party_names: Mapping[str, str] | None = None,
) -> list[EventPayload]:
    """The payloads that record the candidate as `match` says (the URL goes on each envelope).

    A new deal gets a DealReported; a known one a DealStatusChanged and/or DealTermsRevised, or
    a SourceAdded when the article only corroborates it.
    """
    deal = CandidateDeal.model_validate(candidate.model_dump())
    note = (f"{article_title}: " if article_title else "") + (deal.evidence or article_url)
    note = note[:2000]
    if match.action == "new_deal":
        return [
            DealReported(
                lab=deal.lab,
                kind=deal.kind,
                status=deal.status,
                counterparties=deal.counterparties,
                capacity_mw=deal.capacity_mw,
                value_usd=deal.value_usd,
                chips=deal.chips,
                term_years=deal.term_years,
                online_from=deal.online_from,
                location=deal.location,
                title=deal_title(deal, party_names or {}),
                summary=deal.evidence or None,
            )
        ]
    payloads: list[EventPayload] = []
    if match.status is not None:
        payloads.append(DealStatusChanged(status=match.status, reason=note))
    if match.revision:
        payloads.append(DealTermsRevised.model_validate({**match.revision, "summary": note}))
    if not payloads:
        payloads.append(SourceAdded(note=note))
    return payloads


def deal_title(deal: CandidateDeal, party_names: Mapping[str, str]) -> str:
    """A short headline: "Lab / Counterparty: kind"."""

    def name(slug: str) -> str:
        return party_names.get(slug, slug)

    others = ", ".join(dict.fromkeys(name(c.party) for c in deal.counterparties))
    head = name(deal.lab) + (f" / {others}" if others else "")
    return f"{head}: {DealKind(deal.kind).value.replace('_', ' ')}"[:200]
