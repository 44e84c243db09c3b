"""Event payloads: the typed facts of the log, one frozen model per event type, named as it."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from events.errors import UnknownPartyError
from events.parties import SLUG_PATTERN, default_registry
from events.vocabulary import DealKind, DealStatus, LinkRelation, Role

# Plausibility bounds: the largest deals reported are ~10 GW campuses and ~$1.4 trillion of
# commitments in total; a single deal ten times larger than that is a typo, not news.
MAX_DEAL_MW = 100_000.0
MAX_DEAL_USD = 10_000_000_000_000.0
MAX_CHIPS = 100_000_000
MAX_TERM_YEARS = 50.0
DEAL_ID_PATTERN = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"
ONLINE_FROM_PATTERN = re.compile(r"^(19|20|21)\d\d(-(0[1-9]|1[0-2]))?$")


def _known_party(slug: str) -> str:
    """A party slug must be in the registry: an unknown name is a typo or a missing party."""
    try:
        default_registry().get(slug)
    except UnknownPartyError as exc:
        # A plain exception would escape pydantic unwrapped; as a validation error it is
        # reported with its field, like every other bad value ("lab: Unknown party ...").
        raise PydanticCustomError(
            "unknown_party",
            "{detail}",
            {"detail": str(exc), "name": exc.name, "suggestions": exc.suggestions},
        ) from None
    return slug


def _not_a_bool(value: object) -> object:
    """Refuse true/false where a number is due: lax pydantic would read True as 1."""
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not true or false")
    return value


NotBool = BeforeValidator(_not_a_bool)


def _online_from(text: str) -> str:
    if not ONLINE_FROM_PATTERN.match(text):
        raise ValueError("online_from must be YYYY or YYYY-MM, e.g. 2026 or 2026-09")
    return text


PartySlug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64), AfterValidator(_known_party)]
DealId = Annotated[str, Field(pattern=DEAL_ID_PATTERN, min_length=3, max_length=120)]
CapacityMW = Annotated[float, Field(ge=0, le=MAX_DEAL_MW, allow_inf_nan=False), NotBool]
ValueUSD = Annotated[float, Field(ge=0, le=MAX_DEAL_USD, allow_inf_nan=False), NotBool]
TermYears = Annotated[float, Field(gt=0, le=MAX_TERM_YEARS, allow_inf_nan=False), NotBool]
ChipCount = Annotated[int, Field(ge=0, le=MAX_CHIPS), NotBool]
FiniteNumber = Annotated[float, Field(allow_inf_nan=False), NotBool]
OnlineFrom = Annotated[str, AfterValidator(_online_from)]
ShortText = Annotated[str, Field(min_length=1, max_length=2000)]
DatePrecision = Literal["day", "month", "year"]


class ValueModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Counterparty(ValueModel):
    """Another party of a deal, in one role."""

    party: PartySlug
    role: Role


class Chips(ValueModel):
    """The accelerators of a deal: vendor (designer or brand), family, count when reported."""

    vendor: PartySlug
    family: str | None = Field(default=None, max_length=80)
    count: ChipCount | None = None


class EventPayload(ValueModel):
    """Base of every payload; SCHEMA is the payload's schema version (see events/upcasters.py)."""

    SCHEMA: ClassVar[int] = 1
    # Deal facts must carry a source (URL or seed reference) on their envelope.
    IS_DEAL_FACT: ClassVar[bool] = False


class DealReported(EventPayload):
    """A deal between a lab and counterparties was first reported, with its headline terms."""

    IS_DEAL_FACT: ClassVar[bool] = True
    lab: PartySlug
    kind: DealKind
    status: DealStatus
    counterparties: tuple[Counterparty, ...] = ()
    capacity_mw: CapacityMW | None = None
    value_usd: ValueUSD | None = None
    chips: Chips | None = None
    term_years: TermYears | None = None
    online_from: OnlineFrom | None = None
    location: str | None = Field(default=None, max_length=200)
    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=2000)
    date_precision: DatePrecision = "day"

    @model_validator(mode="after")
    def _lab_is_not_its_own_counterparty(self) -> DealReported:
        if any(c.party == self.lab for c in self.counterparties):
            raise ValueError("the lab cannot also be a counterparty of its own deal")
        return self


class DealTermsRevised(EventPayload):
    """A deal's terms changed (size, value, term, chips, kind or parties); absent fields stand."""

    IS_DEAL_FACT: ClassVar[bool] = True
    kind: DealKind | None = None
    capacity_mw: CapacityMW | None = None
    value_usd: ValueUSD | None = None
    chips: Chips | None = None
    term_years: TermYears | None = None
    online_from: OnlineFrom | None = None
    location: str | None = Field(default=None, max_length=200)
    # When given, the full list of counterparties replaces the previous one.
    counterparties: tuple[Counterparty, ...] | None = None
    summary: str | None = Field(default=None, max_length=2000)
    date_precision: DatePrecision = "day"

    @model_validator(mode="after")
    def _changes_something(self) -> DealTermsRevised:
        fields = (
            "kind",
            "capacity_mw",
            "value_usd",
            "chips",
            "term_years",
            "online_from",
            "location",
            "counterparties",
        )
        if all(getattr(self, f) is None for f in fields):
            raise ValueError("a terms revision must change at least one term")
        return self


class DealStatusChanged(EventPayload):
    """A deal moved along rumored -> ... -> operational, or was shelved or cancelled."""

    IS_DEAL_FACT: ClassVar[bool] = True
    status: DealStatus
    reason: str | None = Field(default=None, max_length=2000)
    date_precision: DatePrecision = "day"


class CapacityCameOnline(EventPayload):
    """Part of a deal's capacity went live; mw is the newly live amount when reported."""

    IS_DEAL_FACT: ClassVar[bool] = True
    mw: CapacityMW | None = None
    note: str | None = Field(default=None, max_length=2000)
    date_precision: DatePrecision = "day"


class CounterpartyJoined(EventPayload):
    """A further party joined a deal in a role."""

    IS_DEAL_FACT: ClassVar[bool] = True
    party: PartySlug
    role: Role
    note: str | None = Field(default=None, max_length=2000)


class DealsLinked(EventPayload):
    """This deal is part of, supersedes, or overlaps another deal (capacity counted once)."""

    IS_DEAL_FACT: ClassVar[bool] = True
    relation: LinkRelation
    other_deal: DealId
    note: str | None = Field(default=None, max_length=2000)


class SourceAdded(EventPayload):
    """Another source corroborates the deal as it stands (the URL is on the envelope)."""

    IS_DEAL_FACT: ClassVar[bool] = True
    note: str | None = Field(default=None, max_length=2000)


class EventRetracted(EventPayload):
    """An earlier event was wrong and must be ignored from now on (the analyst's correction)."""

    event_id: UUID
    reason: str = Field(min_length=3, max_length=2000)


class CandidateDeal(ValueModel):
    """A deal as the extractor read it from an article, in the label format."""

    lab: PartySlug
    counterparties: tuple[Counterparty, ...] = ()
    kind: DealKind
    status: DealStatus
    capacity_mw: CapacityMW | None = None
    value_usd: ValueUSD | None = None
    chips: Chips | None = None
    term_years: TermYears | None = None
    online_from: OnlineFrom | None = None
    location: str | None = Field(default=None, max_length=200)
    evidence: str = Field(default="", max_length=2000)


class CandidateProposed(EventPayload):
    """The news watcher found a possible deal in an article; it waits for an analyst's decision."""

    article_url: str = Field(min_length=1, max_length=2000)
    article_title: str | None = Field(default=None, max_length=500)
    feed_id: str | None = Field(default=None, max_length=200)
    published: date | None = None
    deal: CandidateDeal
    matched_deal: DealId | None = None
    action: Literal["new_deal", "update", "source"] = "new_deal"


class CandidateAccepted(EventPayload):
    """An analyst accepted a candidate; the deal events it led to are in `deal_id`'s stream."""

    deal_id: DealId
    note: str | None = Field(default=None, max_length=2000)


class CandidateRejected(EventPayload):
    """An analyst rejected a candidate; nothing was written to any deal."""

    reason: str | None = Field(default=None, max_length=2000)


class CandidatePosted(EventPayload):
    """A candidate was posted for review as a Discord message (so it is posted only once)."""

    channel_id: str = Field(pattern=r"^\d{1,25}$")
    message_id: str = Field(pattern=r"^\d{1,25}$")


class DigestPosted(EventPayload):
    """The weekly digest for an ISO week was posted to a channel (at most once per pair)."""

    channel_id: str = Field(pattern=r"^\d{1,25}$")
    week: str = Field(pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")
    message_id: str = Field(pattern=r"^\d{1,25}$")


class DigestClaimed(EventPayload):
    """A process took on posting the digest of an ISO week to a channel (before posting it).

    Appended with the idempotency key `digest-claim:<channel>:<week>`: only one claim per pair
    is ever stored, so only its claimant posts; DigestPosted follows once the message exists.
    """

    channel_id: str = Field(pattern=r"^\d{1,25}$")
    week: str = Field(pattern=r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")
    claimant: str = Field(min_length=1, max_length=100)


AlertMetric = Literal[
    "committed_gw",
    "operational_gw",
    "contracted_gw",
    "pipeline_gw",
    "rumored_gw",
    "committed_usd",
    "pipeline_usd",
    "backing_usd",
    "deals",
    # Not a position figure: the capacity of one deal, for "any new deal over 1 GW".
    "new_deal_gw",
]


class AlertRuleAdded(EventPayload):
    """A user asked to be told in a channel when a lab's (or any lab's) metric crosses a value."""

    rule_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    channel_id: str = Field(pattern=r"^\d{1,25}$")
    lab: PartySlug | None = None
    metric: AlertMetric
    op: Literal[">=", "<="]
    threshold: FiniteNumber


class AlertRuleRemoved(EventPayload):
    """A user removed an alert rule; it fires no more."""

    rule_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")


class AlertFired(EventPayload):
    """An alert rule's condition became true (one crossing); crossing_key names that crossing."""

    rule_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    value: FiniteNumber
    crossing_key: str = Field(min_length=1, max_length=200)


PAYLOAD_TYPES: dict[str, type[EventPayload]] = {
    cls.__name__: cls
    for cls in (
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
        CandidatePosted,
        DigestPosted,
        DigestClaimed,
        AlertRuleAdded,
        AlertRuleRemoved,
        AlertFired,
    )
}
DEAL_FACT_TYPES: frozenset[str] = frozenset(n for n, c in PAYLOAD_TYPES.items() if c.IS_DEAL_FACT)
