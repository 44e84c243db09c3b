"""Text plumbing for the extractor: normalising, sentences, clauses and party mentions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from events.parties import PartyRegistry, normalise_name
from events.vocabulary import PartyKind

_TRANSLATE = str.maketrans(
    {
        "\u2011": "-",
        "\u2010": "-",
        "\u2013": " - ",
        "\u2014": " - ",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u00a0": " ",
    }
)
# Abbreviations whose period does not end a sentence ("U.S. data center developers").
_ABBREV = re.compile(
    r"(?:\b(?:[A-Z]\.){1,3}|\b(?:Inc|Corp|Co|Ltd|Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|No|approx|est|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.)$"
)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+(?=[\"'(\[#]?[A-Z0-9])|\n\s*")
# Where one clause of a sentence ends and another, possibly about another deal, begins.
_CLAUSE_BREAK = re.compile(
    r";|\s+-\s+|,?\s+\b(?:while|whereas|although|followed by|with plans (?:for|to)|"
    r"as well as|plus)\b|,\s+but\b|\s*\([^)]*\)|"
    r",\s+and\b|"
    r"\s+and\b(?=\s+(?:also\s+)?(?:signed|secured|struck|inked|agreed|build|built|invest\w*|"
    r"pump\w*|plans?|will|expects?|contract|purchas\w*|leas\w*|rent\w*|partner\w*|expand\w*|"
    r"supply|supplies|order\w*|commit\w*|deploy\w*|raised|provid\w*)\b)"
)


# "G42, Oracle, Nvidia, Cisco, and SoftBank": an Oxford-comma list, not two clauses.
_LIST_BEFORE = re.compile(r"[A-Z][\w.'-]*(?: [A-Z][\w.'-]*)*, [A-Z][\w.'-]*(?: [A-Z][\w.'-]*)*$")


def normalise_text(text: str) -> str:
    """Fold typographic dashes, quotes and spaces to ASCII so that patterns stay simple."""
    return text.translate(_TRANSLATE)


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of the normalised text by offsets."""

    start: int
    end: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of `text`; lines are hard breaks because headlines carry no full stop."""
    spans: list[Span] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        head = text[start : m.start() + 1]
        if m.group(0)[0] == "." and _ABBREV.search(head) and "\n" not in m.group(0):
            continue
        if text[start : m.start() + 1].strip():
            spans.append(Span(start, m.start() + 1))
        start = m.end()
    if text[start:].strip():
        spans.append(Span(start, len(text)))
    return [_trim(text, s) for s in spans]


def _trim(text: str, span: Span) -> Span:
    piece = text[span.start : span.end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return Span(span.start + lead, span.end - trail)


def split_clauses(text: str, sentence: Span) -> list[Span]:
    """Clause spans of one sentence, cut at conjunctions and parentheses (kept as clauses)."""
    cuts: list[Span] = []
    start = sentence.start
    body = text[sentence.start : sentence.end]
    for m in _CLAUSE_BREAK.finditer(body):
        if m.group(0).startswith(",") and m.group(0).endswith("and"):
            if _LIST_BEFORE.search(body[: m.start()]):
                continue
        a, b = sentence.start + m.start(), sentence.start + m.end()
        cuts.append(Span(start, a))
        if m.group(0).lstrip().startswith("("):
            cuts.append(Span(a + m.group(0).index("(") + 1, b - 1))
        start = b
    cuts.append(Span(start, sentence.end))
    return [s for s in (_trim(text, c) for c in cuts) if s.end > s.start]


@dataclass(frozen=True, slots=True)
class Mention:
    """A party named in the text: slug, kind, offsets, and how it is used there."""

    slug: str
    kind: PartyKind
    start: int
    end: int
    example: bool  # named as an example ("providers such as AWS"), not as a party to a deal
    chip_ref: bool = False  # named as the maker of chips ("Google's TPUs")


_ORG_SUFFIX = {
    "Energy": PartyKind.ENERGY,
    "Power": PartyKind.ENERGY,
    "Electric": PartyKind.ENERGY,
    "Nuclear": PartyKind.ENERGY,
    "Utilities": PartyKind.ENERGY,
    "Lab": PartyKind.LAB,
    "Labs": PartyKind.LAB,
    "AI": PartyKind.LAB,
    "Capital": PartyKind.FINANCIER,
    "Partners": PartyKind.FINANCIER,
    "Infrastructure": PartyKind.DC_DEVELOPER,
    "Cloud": PartyKind.NEOCLOUD,
    "Computing": PartyKind.NEOCLOUD,
}
_CAP_WORD = r"[A-Z][A-Za-z0-9&-]*"
# An organisation the registry does not know, told by its suffix ("Talen Energy").
_UNKNOWN_ORG = re.compile(
    rf"\b((?:{_CAP_WORD} ){{1,3}}(?:{'|'.join(_ORG_SUFFIX)}))\b(?!['-]?\w)(?! [a-z]+ing\b)"
)
# A name followed by one of these names people or stock of a party, not a party to a deal.
_AFFILIATION = re.compile(
    r"^(?:'s)?\s+(?:executives?|CEO|chief|officials?|employees|shares|stock|engineers|"
    r"researchers|spokes\w+|president|vice president|chairman|founder)\b"
)
# "Google's TPUs", "Nvidia GB200 chips": the vendor of chips named, not necessarily a party.
_CHIP_REF = re.compile(
    r"^(?:'s)?\s+(?:(?:own|custom|new|next-generation|latest|AI|in-house)\s+){0,3}"
    r"(?:chips?|TPUs?|GPUs?|Tensor|Trainium\w*|Grace|Blackwell|Vera|Rubin|GB\d+|H\d00|"
    r"B\d00|MI\d+|accelerators?|Ironwood|silicon)\b",
    re.IGNORECASE,
)
_NOT_NAME_START = {
    "The",
    "A",
    "An",
    "This",
    "That",
    "Its",
    "Their",
    "Our",
    "Why",
    "How",
    "What",
    "New",
    "U",
    "S",
    "US",
    "Generative",
    "Frontier",
    "Sovereign",
    "Open",
    "Big",
    "AI",
    "In",
    "On",
    "For",
    "And",
    "With",
    "By",
    "Chief",
    "Artificial",
    "Agentic",
    "Claude",
    "Physical",
    "Project",
}
_EXAMPLE_CUE = re.compile(r"(?:such as|like|including|e\.g\.,?|for example)\s*$", re.IGNORECASE)


@cache
def _alias_pattern(registry_id: int, registry: PartyRegistry) -> re.Pattern[str]:
    del registry_id
    names = sorted(registry.aliases(), key=len, reverse=True)
    parts = [r"[^A-Za-z0-9]{1,3}".join(re.escape(tok) for tok in name.split()) for name in names]
    return re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(parts) + r")(?![A-Za-z0-9])", re.IGNORECASE)


def find_mentions(text: str, registry: PartyRegistry) -> list[Mention]:
    """Party mentions in the normalised text: registry aliases first, then unknown organisations."""
    aliases = registry.aliases()
    pattern = _alias_pattern(id(registry), registry)
    found: list[Mention] = []
    for m in pattern.finditer(text):
        word = m.group(0)
        # One-word aliases are common words too ("arm", "valor", "lambda"): trust capitals only.
        if " " not in normalise_name(word) and word.islower():
            continue
        slug = aliases.get(normalise_name(word))
        if slug is None:
            continue
        after = text[m.end() : m.end() + 60]
        example = bool(_EXAMPLE_CUE.search(_list_head(text, m.start()))) or bool(
            _AFFILIATION.search(after)
        )
        chip_ref = bool(_CHIP_REF.search(after))
        found.append(Mention(slug, registry.get(slug).kind, m.start(), m.end(), example, chip_ref))
    taken = [(x.start, x.end) for x in found]
    for m in _UNKNOWN_ORG.finditer(text):
        words = m.group(1).split()
        while words and words[0] in _NOT_NAME_START:
            words = words[1:]
        if len(words) < 2:
            continue
        start = m.end(1) - len(" ".join(words))
        if any(s < m.end(1) and start < e for s, e in taken):
            continue
        if words[-1] == "AI" and re.match(r" [a-z]", text[m.end(1) : m.end(1) + 2]):
            continue
        slug = "-".join(normalise_name(" ".join(words)).split())
        kind = _ORG_SUFFIX[words[-1]]
        example = bool(_EXAMPLE_CUE.search(_list_head(text, start)))
        found.append(Mention(slug, kind, start, m.end(1), example))
    found.sort(key=lambda x: x.start)
    return found


def _list_head(text: str, start: int) -> str:
    """The text before a name, with any list of names before it skipped ("such as A, B and")."""
    head = text[max(0, start - 120) : start]
    # Step back over earlier items of the same list so that "such as A, B, and C" marks C too.
    return re.sub(r"(?:[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*\s*(?:,|and|or)\s*)+$", "", head)
