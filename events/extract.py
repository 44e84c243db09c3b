"""Deal candidates from news text, by rules and the party registry: pure, no model, no IO."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from events._extract_text import (
    Mention,
    Span,
    find_mentions,
    normalise_text,
    split_clauses,
    split_sentences,
)
from events.parties import PartyRegistry, default_registry
from events.units import Quantity, find_quantities
from events.vocabulary import LADDER, DealKind, DealStatus, PartyKind, Role

__all__ = [
    "Chips",
    "Counterparty",
    "DealCandidate",
    "candidates_to_jsonl_rows",
    "extract_candidates",
]


class Counterparty(BaseModel):
    """A party to a deal other than the lab, with the part it plays."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    party: str
    role: Role


class Chips(BaseModel):
    """The accelerators of a deal: vendor slug, family, and count when stated."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    vendor: str
    family: str
    count: int | None = None


class DealCandidate(BaseModel):
    """A deal the extractor read in a text, in the label shape of the corpus; not yet a fact."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    lab: str
    counterparties: tuple[Counterparty, ...] = ()
    kind: DealKind
    status: DealStatus
    capacity_mw: float | None = Field(default=None, gt=0)
    value_usd: float | None = Field(default=None, gt=0)
    chips: Chips | None = None
    term_years: int | None = Field(default=None, gt=0)
    online_from: str | None = Field(default=None, pattern=r"^\d{4}(-\d{2})?$")
    location: str | None = None
    evidence: str

    def to_label(self) -> dict[str, object]:
        """The JSON shape of a corpus label (see corpus/README.md)."""
        return self.model_dump(mode="json")


def candidates_to_jsonl_rows(
    path: str, candidates: Iterable[DealCandidate]
) -> list[dict[str, object]]:
    """One `{"file": path, **label}` row per candidate, as `computewatch extract --jsonl` prints."""
    return [{"file": path, **c.to_label()} for c in candidates]


# --- cues -------------------------------------------------------------------------------------

_I = re.IGNORECASE
_GUARANTEE = re.compile(r"\bguarant(?:ee|ees|eed|eeing|or)\b|\bbackstop", _I)
_INVEST = re.compile(
    r"\b(?:invest(?:s|ed|ing|ment|ments)?|pump(?:s|ed|ing)?|stake|equity investment)\b", _I
)
_INTO_FACILITY = re.compile(
    r"^[^.;]{0,60}?\b(?:in|into)\s+(?:[\w.-]+\s+){0,3}?(?:data\s*cent(?:er|re)s?|facilit|"
    r"infrastructure|campus|sites?)",
    _I,
)
_LEASE = re.compile(r"\b(?:leas(?:e|es|ed|ing)|rent(?:s|ed|ing|al)?)\b", _I)
_LOI = re.compile(
    r"\bletters?\s+of\s+intent\b|\bLOIs?\b|\bmemorand(?:um|a)\s+of\s+understanding\b|\bMOUs?\b|"
    r"\bnon-?binding\b|\bpreliminary\s+(?:lease\s+)?agreements?\b|\bframework agreement",
    _I,
)
_CHIP_BUY = re.compile(
    r"\b(?:order(?:s|ed)?|purchas(?:e|es|ed|ing)|buy(?:s|ing)?|bought|procure(?:ment|s|d)?)\b", _I
)
_PARTNERSHIP = re.compile(
    r"\bpartner(?:ship|ships|ed|ing|s)?\b|\bteam(?:s|ed|ing)? up\b|\bjoint venture\b|"
    r"\bcollaborat\w*|\bStargate\b|\btie-up\b|\balliance\b",
    _I,
)
_PROGRAM = re.compile(r"\bStargate\b|\bjoint venture\b|\bconsortium\b", _I)
_BUILD = re.compile(
    r"\b(?:build(?:s|ing)?|built|construct(?:s|ed|ing)?\b|develop(?:s|ing)?\s+(?:a\s+)?(?:data|campus))\b",
    _I,
)
_FINANCE = re.compile(r"\braised?\b[^.;]{0,60}\b(?:to finance|to fund|financ)", _I)
_DEAL = re.compile(
    r"\b(?:deals?|contracts?|agreements?|pacts?|add-ons?|arrangements?|commit(?:s|ted|ment|ments)?|"
    r"sign(?:s|ed|ing)?|inks?|inked|struck|strikes?|striking|secur(?:e|es|ed|ing)|expand(?:s|ed)|"
    r"supply|supplies|supplying|order(?:s|ed)?|grants?)\b",
    _I,
)
_COMPUTE = re.compile(
    r"\b(?:cloud|compute|computing|cluster|capacity|data\s*cent(?:er|re)s?|supercomputer|"
    r"servers?|GPUs?|TPUs?|chips?)\b",
    _I,
)
_POWER = re.compile(r"\b(?:electricity|nuclear|power purchase|PPA|reactors?|energy)\b", _I)
_REFERENCE = re.compile(
    r"\b(?:the|that|this|its)\s+(?:[\w-]+\s+){0,4}?(?:deal|agreement|contract|partnership|pact|arrangement|company|"
    r"startup|firm|lab|project|partner list|commitment|developer|maker)\b|^\s*(?:it|they)\b",
    _I,
)
_GENERIC = re.compile(
    r"^\s*(?:renting|leasing|buying|building|owning|securing|signing)\b|\bis a (?:strategic )?"
    r"(?:mistake|risk)\b|\bif\b|\b(?:dependence|reliance|reliant|relies|rely|relying|"
    r"depend\w*) on\b|\b(?:without|instead of|rather than|needs? to|must|should|similar)\b|"
    r"\b(?:the two|both)\b|\bunclear whether\b",
    _I,
)
# Figures that describe something other than a deal: totals so far, revenue, valuations.
_NOT_DEAL_VALUE = re.compile(
    r"(?:revenue|run-rate|valuation|valued at|worth of|net worth|market (?:cap|value)|shares|"
    r"bring(?:s|ing)?\b[^.;]{0,60}\bto|total value of[^.;]{0,40}\bto|salary|earnings)"
    r"[^.;$]{0,25}$",
    _I,
)
_NOT_DEAL_VALUE_AFTER = re.compile(
    r"^\s*(?:valuation|in (?:annual )?revenue|revenue|a year|per year|annually|run-rate)", _I
)

_STATUS_CUES: tuple[tuple[DealStatus, re.Pattern[str]], ...] = (
    (
        DealStatus.CANCELLED,
        re.compile(r"\b(?:cancel(?:l)?ed|terminated|scrapped|called off)\b", _I),
    ),
    (DealStatus.SHELVED, re.compile(r"\b(?:shelved|paused|put on hold|suspended)\b", _I)),
    (DealStatus.LOI, _LOI),
    (
        DealStatus.OPERATIONAL,
        re.compile(
            r"\b(?:already|now|is|are|fully|became)\s+(?:fully\s+)?operational\b|\bwent live\b|"
            r"\bcame online\b|\bup and running\b|\balready (?:being )?used\b|\bis live\b",
            _I,
        ),
    ),
    (
        DealStatus.SIGNED,
        re.compile(r"\b(?:signed|finali[sz]ed|inks?|inked|struck|clinched|sealed|closed)\b", _I),
    ),
    (
        DealStatus.NEGOTIATING,
        re.compile(r"\bnegotiat\w*|\bin talks\b|\btalks\b|\bin discussions\b|\bexploring\b", _I),
    ),
    (
        DealStatus.RUMORED,
        re.compile(
            r"\b(?:potential|possible|rumou?red|speculat\w*|unconfirmed|not confirmed|"
            r"could (?:sign|strike|reach))\b",
            _I,
        ),
    ),
    (
        DealStatus.SIGNED,
        re.compile(
            r"\b(?:announc\w*|agreed|secured|confirmed|placed|expanded|partnered|unveiled|"
            r"will (?:supply|provide|invest|purchase)|plans? to (?:purchase|invest))\b",
            _I,
        ),
    ),
)

_CHIP_FAMILIES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\bTPUs?\b|Tensor Processing Units?|\bIronwood\b", _I), "google", "tpu"),
    (re.compile(r"\bTrainium\s*2\b", _I), "amazon", "trainium2"),
    (re.compile(r"\bTrainium\s*3\b", _I), "amazon", "trainium3"),
    (re.compile(r"\bTrainium\b", _I), "amazon", "trainium"),
    (re.compile(r"\bGB200\b", _I), "nvidia", "gb200"),
    (re.compile(r"\bGB300\b", _I), "nvidia", "gb300"),
    (re.compile(r"\bGrace Blackwell\b", _I), "nvidia", "grace-blackwell"),
    (re.compile(r"\bVera Rubin\b", _I), "nvidia", "vera-rubin"),
    (re.compile(r"\bH100s?\b", _I), "nvidia", "h100"),
    (re.compile(r"\bH200s?\b", _I), "nvidia", "h200"),
    (re.compile(r"\bB200s?\b", _I), "nvidia", "b200"),
    (re.compile(r"\bBlackwell\b", _I), "nvidia", "blackwell"),
    (re.compile(r"\bMI(\d{3})X?\b"), "amd", "mi"),
    (re.compile(r"\bGPUs?\b"), "nvidia", "gpu"),
    (
        re.compile(r"\bcustom (?:AI )?(?:server )?(?:chips?|accelerators?)|self-developed", _I),
        "",
        "custom-accelerator",
    ),
)
_TERM = re.compile(
    r"\b(\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty)[- ]years?\b"
    r"(?![- ](?:old|ago|high|low))|\b(?:over|for)\s+(?:the\s+next\s+)?(\d{1,2})\s+years\b",
    _I,
)
_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
}
_ONLINE = re.compile(
    r"\b(?:by|in|starting in|from|beginning in|online in|live in|operational by|in early|"
    r"in late|by mid-|by the end of)\s*(?:early |late |mid-)?(20[2-4]\d)\b",
    _I,
)
_LOCATION = re.compile(
    r"\bin ((?:[A-Z][a-z]+\s){0,2}[A-Z][a-z]+(?:,\s(?:[A-Z][a-z]+\s?){1,2})?)(?=[\s,.;])"
)
_NOT_PLACES = {
    "May",
    "March",
    "April",
    "June",
    "July",
    "January",
    "February",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Anthropic",
    "OpenAI",
    "The",
    "This",
    "Its",
    "AI",
    "Claude",
}
_PLACES_HINT = re.compile(
    r"\b(?:Texas|Ohio|Pennsylvania|Illinois|Abu Dhabi|UAE|United States|Virginia|Georgia|Arizona|"
    r"Tennessee|Memphis|Abilene|Wisconsin|Louisiana|Michigan|New Mexico|Norway|India|France|"
    r"United Kingdom|UK|Saudi Arabia|Argentina|Japan|Korea|Germany|Indiana|Mississippi|Oklahoma|"
    r"Wyoming|Nevada|Utah|Oregon|Washington|New York|North Dakota|South Carolina|Iowa|Canada)\b"
)


# --- clause analysis --------------------------------------------------------------------------


@dataclass
class _Segment:
    """One clause of a sentence with what was read in it."""

    text: str
    sentence: str
    mentions: list[Mention]
    quantities: list[Quantity]
    start: int


@dataclass
class _Draft:
    """A candidate being assembled; becomes a DealCandidate at the end."""

    lab: str
    parties: dict[str, Role]
    kind: DealKind
    status: DealStatus
    explicit_status: bool
    capacity_mw: float | None
    value_usd: float | None
    chips: tuple[str, str] | None
    chip_count: int | None
    term_years: int | None
    online_from: str | None
    location: str | None
    evidence: str
    anchor_kind: str
    sentence_index: int
    notes: list[str] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)


def _status(text: str, fallback: str) -> tuple[DealStatus, bool]:
    for source in (text, fallback):
        for status, pattern in _STATUS_CUES:
            if pattern.search(source):
                return status, True
    return DealStatus.SIGNED, False


def _kind_anchor(text: str) -> str | None:
    """The strongest kind cue of a clause, or None when it names no deal at all."""
    if _GUARANTEE.search(text):
        return "guarantee"
    m = _INVEST.search(text)
    if m:
        return "build" if _INTO_FACILITY.search(text[m.end() :]) else "invest"
    if _FINANCE.search(text):
        return "finance"
    if _PROGRAM.search(text):
        return "program"
    if _LOI.search(text) or _LEASE.search(text):
        return "lease"
    if _PARTNERSHIP.search(text):
        return "partnership"
    if _CHIP_BUY.search(text):
        return "buy"
    if _DEAL.search(text):
        return "deal"
    if _BUILD.search(text) and re.search(r"data\s*cent|campus|facilit|site", text, _I):
        return "build"
    return None


def _labs(mentions: list[Mention], text: str, offset: int) -> list[Mention] | None:
    """Lab mentions of a clause; None when two labs are named together as a generic pair."""
    labs = [m for m in mentions if m.kind is PartyKind.LAB and not m.example]
    for a, b in zip(labs, labs[1:], strict=False):
        between = text[a.end - offset : b.start - offset]
        if a.slug != b.slug and re.fullmatch(r"\s*(?:,|and|or|&|,\s*and)?\s*", between):
            return None
    return labs


def _role(kind: DealKind, anchor: str, party: Mention, alone: bool) -> Role:
    if party.chip_ref and not alone and party.kind is not PartyKind.CHIPMAKER:
        return Role.PARTNER  # "orders with Broadcom for Google's TPUs": Google designs, not sells
    if kind is DealKind.GUARANTEE:
        return Role.GUARANTOR
    if kind is DealKind.INVESTMENT_FOR_COMPUTE:
        return Role.INVESTOR
    if party.kind is PartyKind.ENERGY:
        return Role.POWER_SUPPLIER
    if party.kind is PartyKind.CHIPMAKER:
        return Role.CHIP_SUPPLIER
    if kind is DealKind.CAPACITY_PARTNERSHIP:
        return Role.PARTNER
    if party.kind is PartyKind.FINANCIER:
        return Role.FINANCIER if anchor == "finance" else Role.PARTNER
    if party.kind is PartyKind.DC_DEVELOPER:
        return Role.PARTNER if kind is DealKind.OWNED_BUILD else Role.LANDLORD
    return Role.PROVIDER


def _kind(anchor: str, others: list[Mention], text: str) -> DealKind | None:
    parties = [m for m in others if not m.chip_ref] or others
    kinds = {m.kind for m in parties}
    suppliers = {PartyKind.HYPERSCALER, PartyKind.NEOCLOUD, PartyKind.LAB, PartyKind.OTHER}
    if anchor == "guarantee":
        return DealKind.GUARANTEE
    if anchor == "invest":
        return DealKind.INVESTMENT_FOR_COMPUTE if others else None
    if PartyKind.ENERGY in kinds:
        return DealKind.POWER_SUPPLY
    if anchor == "finance":
        return DealKind.OWNED_BUILD
    if anchor == "program":
        return DealKind.CAPACITY_PARTNERSHIP
    if not others:
        if anchor == "lease" and (
            _LOI.search(text)
            or re.search(r"data\s*cent|campus|facilit|computer room|project|site", text, _I)
        ):
            return DealKind.DATACENTER_LEASE
        if anchor == "build":
            return DealKind.OWNED_BUILD
        return None
    if anchor == "build" and not kinds & {PartyKind.HYPERSCALER, PartyKind.NEOCLOUD}:
        return DealKind.CAPACITY_PARTNERSHIP
    if PartyKind.DC_DEVELOPER in kinds and not kinds & suppliers:
        return DealKind.DATACENTER_LEASE
    if kinds & suppliers:
        return DealKind.CLOUD_CONTRACT
    if PartyKind.CHIPMAKER in kinds:
        return DealKind.CHIP_PURCHASE
    return DealKind.CAPACITY_PARTNERSHIP


def _value(seg: _Segment, kind: str) -> Quantity | None:
    for q in seg.quantities:
        if q.kind != kind:
            continue
        head = seg.sentence[: q.start]
        if kind == "usd" and (
            _NOT_DEAL_VALUE.search(head[-90:])
            or _NOT_DEAL_VALUE_AFTER.search(seg.sentence[q.end : q.end + 30])
        ):
            continue
        if kind == "power_mw" and re.search(
            r"bring(?:s|ing)?\b[^.;]{0,60}\bto\s*(?:\w+\s+){0,2}$", head[-90:], _I
        ):
            continue
        return q
    return None


def _chips(text: str) -> tuple[str, str] | None:
    for pattern, vendor, family in _CHIP_FAMILIES:
        m = pattern.search(text)
        if m:
            if family == "mi":
                return vendor, f"mi{m.group(1)}"
            return vendor, family
    return None


def _term(text: str) -> int | None:
    m = _TERM.search(text)
    if not m:
        return None
    word = (m.group(1) or m.group(2)).lower()
    return _WORDS.get(word) or int(word)


def _online(text: str) -> str | None:
    m = _ONLINE.search(text)
    return m.group(1) if m else None


def _location(text: str) -> str | None:
    for m in _LOCATION.finditer(text):
        place = m.group(1).strip()
        if place.split()[0] not in _NOT_PLACES and _PLACES_HINT.search(place):
            return place
    hint = _PLACES_HINT.search(text)
    return hint.group(0) if hint else None


# --- assembly ---------------------------------------------------------------------------------


_RANK = {s: i for i, s in enumerate(LADDER)}


def _merge_status(a: _Draft, b: _Draft) -> tuple[DealStatus, bool]:
    if not b.explicit_status:
        return a.status, a.explicit_status
    if not a.explicit_status:
        return b.status, True
    if b.status in (DealStatus.SHELVED, DealStatus.CANCELLED):
        return b.status, True
    if a.status in (DealStatus.SHELVED, DealStatus.CANCELLED):
        return a.status, True
    return max(a.status, b.status, key=lambda s: _RANK[s]), True


def _close(a: float | None, b: float | None) -> bool:
    return a is None or b is None or abs(a - b) <= 0.05 * max(a, b)


def _fill(into: _Draft, new: _Draft) -> None:
    for role_party, role in new.parties.items():
        into.parties.setdefault(role_party, role)
    into.status, into.explicit_status = _merge_status(into, new)
    into.capacity_mw = into.capacity_mw or new.capacity_mw
    into.value_usd = into.value_usd or new.value_usd
    into.chips = into.chips or new.chips
    into.chip_count = into.chip_count or new.chip_count
    into.term_years = into.term_years or new.term_years
    into.online_from = into.online_from or new.online_from
    into.location = into.location or new.location


def _same_deal(a: _Draft, b: _Draft) -> bool:
    if a.lab != b.lab or a.kind is not b.kind:
        return False
    if a.parties and b.parties and not set(a.parties) & set(b.parties):
        return False
    return _close(a.value_usd, b.value_usd)


def extract_candidates(
    text: str, *, published: date | None = None, registry: PartyRegistry | None = None
) -> list[DealCandidate]:
    """The deals a text states, one candidate per deal; an empty list when it states none."""
    del published  # Relative dates are not resolved yet; labels keep the year as written.
    registry = registry or default_registry()
    text = normalise_text(text)
    mentions = find_mentions(text, registry)
    quantities = find_quantities(text)
    sentences = split_sentences(text)
    # A last line cut off mid-word (a feed excerpt) lost its object: reading it invents deals.
    last = sentences[-1] if len(sentences) > 1 else None
    if last is not None and re.search(r"[A-Za-z0-9,]$", text[last.start : last.end]):
        cut = max(text.rfind(",", last.start, last.end), text.rfind(";", last.start, last.end))
        sentences[-1] = Span(last.start, cut)
        if cut <= last.start:
            sentences.pop()
    drafts: list[_Draft] = []
    # Until a lab is named, a deal sentence belongs to the first lab the text names at all.
    first_lab = next((m.slug for m in mentions if m.kind is PartyKind.LAB and not m.example), None)
    context_lab: str | None = first_lab
    for index, sentence in enumerate(sentences):
        sentence_text = text[sentence.start : sentence.end]
        previous: _Draft | None = None
        sentence_labs: list[str] = []
        for clause in split_clauses(text, sentence):
            seg = _Segment(
                text=text[clause.start : clause.end],
                sentence=text[sentence.start : clause.end],
                mentions=[m for m in mentions if clause.start <= m.start < clause.end],
                quantities=[
                    q.__class__(
                        q.kind,
                        q.value,
                        q.start - sentence.start,
                        q.end - sentence.start,
                        q.text,
                        q.qualifier,
                    )
                    for q in quantities
                    if clause.start <= q.start < clause.end
                ],
                start=clause.start,
            )
            draft = _read_clause(seg, sentence_text, context_lab, previous, index)
            labs = _labs(seg.mentions, text, 0)
            if labs:
                sentence_labs.append(labs[0].slug)
            if draft is None:
                continue
            previous = draft
            _add(drafts, draft)
        if sentence_labs:
            context_lab = sentence_labs[-1]
    return [_finish(d) for d in drafts if d.parties or d.kind in _NO_PARTY_KINDS]


_NO_PARTY_KINDS = {DealKind.DATACENTER_LEASE, DealKind.OWNED_BUILD}


def _add(drafts: list[_Draft], draft: _Draft) -> None:
    for old in drafts:
        if old.parties and not draft.parties and "reference" not in draft.notes:
            continue
        if _same_deal(old, draft):
            _fill(old, draft)
            return
    # A clause with no counterparty of its own that refers back ("the deal") adds to the last deal.
    if drafts and not draft.parties and "reference" in draft.notes:
        last = drafts[-1]
        compatible = "weak" in draft.notes or draft.kind is last.kind
        if last.lab == draft.lab and compatible and _close(last.value_usd, draft.value_usd):
            _fill(last, draft)
            return
    drafts.append(draft)


def _read_clause(
    seg: _Segment,
    sentence: str,
    context_lab: str | None,
    previous: _Draft | None,
    index: int,
) -> _Draft | None:
    text = seg.text
    if _GENERIC.search(text):
        return None
    anchor = _kind_anchor(text)
    has_quantity = any(
        q.kind == "usd" and _value(seg, "usd") is q or q.kind != "usd" for q in seg.quantities
    )
    if anchor is None:
        if not (has_quantity and _COMPUTE.search(text)) and not _REFERENCE.search(text):
            return None
        anchor = "compute"
    if (
        anchor == "deal"
        and previous is not None
        and previous.anchor_kind in ("invest", "guarantee")
        and not re.search(r"\b(?:deal|contract|agreement|pact)s?\b", text, _I)
    ):
        anchor = previous.anchor_kind  # "Microsoft invests $5B while Nvidia commits $10B"
    labs = _labs(seg.mentions, text, seg.start)
    if labs is None:
        return None
    named = [m for m in seg.mentions if not m.example]
    lab: str | None = labs[0].slug if labs else None
    notes: list[str] = []
    if lab is None:
        lab = _buyer(named, text, seg.start, anchor)
    if lab is None and previous is not None:
        lab = previous.lab
    if (
        lab is None
        and context_lab is not None
        and not any(m.kind is PartyKind.LAB for m in seg.mentions)
    ):
        if has_quantity or _REFERENCE.search(text) or _REFERENCE.search(sentence):
            lab = context_lab
    if lab is None:
        return None
    others: list[Mention] = []
    for m in named:
        if m.slug != lab and m.slug not in {o.slug for o in others}:
            others.append(m)
    if (
        not others
        and previous is not None
        and previous.lab == lab
        and anchor == previous.anchor_kind
    ):
        return _inherit(seg, sentence, previous, index)
    inherited = anchor != _kind_anchor(text)
    if not others and previous is not None and previous.lab == lab and previous.mentions:
        # "Google invested $3B and secured a cloud deal": the subject carries over to the verb.
        others = [m for m in previous.mentions if m.slug != lab]
    if others and all(m.chip_ref for m in others) and previous is not None and not labs:
        # "... compute power using Nvidia's Grace Blackwell": the chips of the previous deal.
        _fill(previous, _read_tail(seg, previous, others, index))
        return None
    if _REFERENCE.search(text) and not others:
        notes.append("reference")
    if anchor == "partnership" and not labs and others and previous is None:
        notes.append("reference")
    kind = _kind(anchor, others, text)
    if kind is None:
        if not others and _REFERENCE.search(text) and anchor not in ("invest", "guarantee"):
            kind = DealKind.CLOUD_CONTRACT
            notes += ["reference", "weak"]
        else:
            return None
    if kind is DealKind.INVESTMENT_FOR_COMPUTE:
        amount = _value(seg, "usd")
        invest = _INVEST.search(text)
        # Equity with no amount near the verb ("an undisclosed investment") is no deal figure.
        if amount is None:
            return None
        near = (
            invest is not None
            and abs(amount.start - (invest.start() + seg.start - seg_sentence_start(seg))) <= 60
        )
        if not (near or inherited):
            return None
    parties: dict[str, Role] = {}
    for m in others:
        if m.slug not in parties:
            parties[m.slug] = _role(kind, anchor, m, all(o.chip_ref for o in others))
    status, explicit = _status(text, sentence)
    value = _value(seg, "usd")
    power = _value(seg, "power_mw")
    count = next((q for q in seg.quantities if q.kind == "count"), None)
    chips = _chips(text)
    if chips and not chips[0]:
        vendor = next((m.slug for m in others if m.kind is PartyKind.CHIPMAKER), None)
        chips = (vendor, chips[1]) if vendor else None
    return _Draft(
        lab=lab,
        parties=parties,
        kind=kind,
        status=status,
        explicit_status=explicit,
        capacity_mw=power.value if power else None,
        value_usd=value.value if value else None,
        chips=chips,
        chip_count=int(count.value) if count else None,
        term_years=_term(text),
        online_from=_online(text),
        location=_location(sentence),
        evidence=text.strip()[:300],
        anchor_kind=anchor,
        sentence_index=index,
        notes=notes,
        mentions=others,
    )


def seg_sentence_start(seg: _Segment) -> int:
    """Offset of the segment's sentence in the text (quantities are sentence-relative)."""
    return seg.start - (len(seg.sentence) - len(seg.text))


def _read_tail(seg: _Segment, previous: _Draft, vendors: list[Mention], index: int) -> _Draft:
    """What a trailing clause adds to the previous deal: figures, chips and their vendor."""
    power = _value(seg, "power_mw")
    value = _value(seg, "usd")
    count = next((q for q in seg.quantities if q.kind == "count"), None)
    return _Draft(
        lab=previous.lab,
        parties={
            m.slug: Role.CHIP_SUPPLIER if m.kind is PartyKind.CHIPMAKER else Role.PARTNER
            for m in vendors
        },
        kind=previous.kind,
        status=previous.status,
        explicit_status=False,
        capacity_mw=power.value if power else None,
        value_usd=value.value if value else None,
        chips=_chips(seg.text),
        chip_count=int(count.value) if count else None,
        term_years=_term(seg.text),
        online_from=_online(seg.text),
        location=None,
        evidence=seg.text,
        anchor_kind=previous.anchor_kind,
        sentence_index=index,
    )


def _inherit(seg: _Segment, sentence: str, previous: _Draft, index: int) -> _Draft | None:
    """A clause that continues the previous one's deal ("followed by a $4B add-on")."""
    value = _value(seg, "usd")
    if value is None:
        return None
    status, explicit = _status(seg.text, sentence)
    return _Draft(
        lab=previous.lab,
        parties=dict(previous.parties),
        kind=previous.kind,
        status=status,
        explicit_status=explicit,
        capacity_mw=None,
        value_usd=value.value,
        chips=None,
        chip_count=None,
        term_years=_term(seg.text),
        online_from=None,
        location=None,
        evidence=seg.text.strip()[:300],
        anchor_kind=previous.anchor_kind,
        sentence_index=index,
    )


_BUY_VERB = re.compile(
    r"\b(?:purchas\w*|buy\w*|bought|order\w*|leas\w*|rent\w*|signed|raised?|secur\w*)\b", _I
)


def _buyer(named: list[Mention], text: str, offset: int, anchor: str) -> str | None:
    """The party that acquires compute when no lab is named: the subject of a buying verb."""
    if not named:
        return None
    if any(m.kind is PartyKind.ENERGY for m in named):
        users = [m for m in named if m.kind is not PartyKind.ENERGY]
        return users[0].slug if users else None
    verb = _BUY_VERB.search(text)
    first = named[0]
    if verb and first.start - offset < verb.start():
        if first.kind is PartyKind.CHIPMAKER:
            return None
        if anchor in ("invest", "guarantee"):
            return None
        return first.slug
    return None


def _finish(d: _Draft) -> DealCandidate:
    chips = None
    if d.chips is not None:
        chips = Chips(vendor=d.chips[0], family=d.chips[1], count=d.chip_count)
    elif d.chip_count is not None and d.kind in (DealKind.CHIP_PURCHASE, DealKind.CLOUD_CONTRACT):
        vendor = next((p for p, r in d.parties.items() if r is Role.CHIP_SUPPLIER), None)
        if vendor:
            chips = Chips(vendor=vendor, family="gpu", count=d.chip_count)
    return DealCandidate(
        lab=d.lab,
        counterparties=tuple(Counterparty(party=p, role=r) for p, r in d.parties.items()),
        kind=d.kind,
        status=d.status,
        capacity_mw=d.capacity_mw,
        value_usd=d.value_usd,
        chips=chips,
        term_years=d.term_years,
        online_from=d.online_from,
        location=d.location,
        evidence=d.evidence,
    )
