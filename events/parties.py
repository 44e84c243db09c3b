"""The party registry: slugs, display names, kinds and aliases, looked up by any alias."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from events.errors import UnknownPartyError
from events.vocabulary import PartyKind

SLUG_PATTERN = r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$"


class Party(BaseModel):
    """An organisation that takes part in compute deals."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    slug: str = Field(pattern=SLUG_PATTERN, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: PartyKind
    aliases: tuple[str, ...] = ()


def normalise_name(name: str) -> str:
    """Fold case, punctuation and spacing: 'Amazon  Web-Services' finds 'amazon web services'."""
    return re.sub(r"[^a-z0-9]+", " ", name.casefold()).strip()


class PartyRegistry:
    """Immutable lookup of parties by slug, display name or alias (case-insensitive)."""

    def __init__(self, parties: Iterable[Party]) -> None:
        self._by_slug: dict[str, Party] = {}
        self._by_name: dict[str, str] = {}
        for party in parties:
            if party.slug in self._by_slug:
                raise ValueError(f"duplicate party slug {party.slug!r}")
            self._by_slug[party.slug] = party
        for party in self._by_slug.values():
            for name in (party.slug, party.slug.replace("-", " "), party.name, *party.aliases):
                key = normalise_name(name)
                if key and self._by_name.setdefault(key, party.slug) != party.slug:
                    raise ValueError(f"alias {name!r} names two parties")

    def __iter__(self) -> Iterator[Party]:
        return iter(self._by_slug.values())

    def __len__(self) -> int:
        return len(self._by_slug)

    def __contains__(self, slug: object) -> bool:
        return slug in self._by_slug

    def get(self, slug: str) -> Party:
        """The party with this exact slug; UnknownPartyError (with suggestions) otherwise."""
        try:
            return self._by_slug[slug]
        except KeyError:
            raise UnknownPartyError(slug, self.suggest(slug)) from None

    def find(self, name: str) -> Party | None:
        """The party a name, slug or alias refers to, or None."""
        slug = self._by_name.get(normalise_name(name))
        return self._by_slug[slug] if slug else None

    def resolve(self, name: str) -> Party:
        """Like find, but raise UnknownPartyError with "did you mean" suggestions."""
        party = self.find(name)
        if party is None:
            raise UnknownPartyError(name, self.suggest(name))
        return party

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        """Slugs whose names look like `name`, best first."""
        key = normalise_name(name)
        if not key:
            return []
        hits = difflib.get_close_matches(key, list(self._by_name), n=limit * 3, cutoff=0.6)
        prefix = [k for k in self._by_name if k.startswith(key)] if len(key) >= 2 else []
        slugs: list[str] = []
        for k in prefix + hits:
            slug = self._by_name[k]
            if slug not in slugs:
                slugs.append(slug)
        return slugs[:limit]

    def aliases(self) -> dict[str, str]:
        """Every normalised name the registry knows, mapped to its slug."""
        return dict(self._by_name)

    def labs(self) -> list[Party]:
        return [p for p in self._by_slug.values() if p.kind is PartyKind.LAB]


def parse_registry(document: str) -> PartyRegistry:
    """Build a registry from the project's parties.json text."""
    data = json.loads(document)
    return PartyRegistry(Party.model_validate(p) for p in data["parties"])


@cache
def default_registry() -> PartyRegistry:
    """The registry bundled with computewatch (events/data/parties.json)."""
    text = resources.files("events").joinpath("data/parties.json").read_text(encoding="utf-8")
    return parse_registry(text)
