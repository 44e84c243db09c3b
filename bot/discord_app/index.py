"""The in-memory index behind autocomplete: lab slugs and names, deal ids (refreshed on writes)."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

from events.parties import PartyRegistry
from store.log import EventStore
from store.queries import Queries

MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices


@dataclass(frozen=True)
class DealIds:
    """Sorted deal ids, also joined by newlines with where each starts in that text: a large
    log has hundreds of thousands of deals, and autocomplete runs on the event loop."""

    ids: list[str]
    text: str
    starts: list[int]

    @classmethod
    def of(cls, ids: list[str]) -> DealIds:
        ids = sorted(ids)
        starts = list(itertools.accumulate((len(d) + 1 for d in ids[:-1]), initial=0))
        return cls(ids, "\n".join(ids), starts if ids else [])

    def containing(self, text: str, limit: int) -> list[str]:
        """Up to `limit` ids that contain `text`: those that start with it first (found by
        bisection), then the others (one C-speed search of the joined text), each in order."""
        first = bisect.bisect_left(self.ids, text)
        hits = [d for d in self.ids[first : first + limit] if d.startswith(text)]
        if len(hits) == limit or not text or "\n" in text:
            return hits
        position = 0
        while len(hits) < limit:
            found = self.text.find(text, position)
            if found < 0:
                break
            i = bisect.bisect_right(self.starts, found) - 1
            if not self.ids[i].startswith(text):  # those are listed already
                hits.append(self.ids[i])
            position = self.starts[i + 1] if i + 1 < len(self.starts) else len(self.text)
        return hits


@dataclass
class SearchIndex:
    """What autocomplete offers; `refresh` rebuilds it from the store (call it off the loop)."""

    labs: dict[str, str] = field(default_factory=dict)  # slug -> display name
    deals: DealIds = field(default_factory=lambda: DealIds.of([]))

    @property
    def deal_ids(self) -> list[str]:
        return self.deals.ids

    def refresh(self, store: EventStore, registry: PartyRegistry) -> None:
        deal_ids = store.deal_ids()
        slugs = {p.slug for p in registry.labs()} | set(Queries(store).labs_with_deals())
        self.labs = {s: (registry.get(s).name if s in registry else s) for s in sorted(slugs)}
        self.deals = DealIds.of(deal_ids)  # one assignment: a reader sees the old or the new

    def match_labs(self, current: str) -> list[tuple[str, str]]:
        """(label, slug) pairs whose slug or name contains the typed text; prefixes first."""
        text = current.strip().lower()
        hits = [
            (slug, name) for slug, name in self.labs.items() if text in slug or text in name.lower()
        ]
        hits.sort(
            key=lambda h: (not (h[0].startswith(text) or h[1].lower().startswith(text)), h[0])
        )
        return [
            (f"{name} ({slug})" if name.lower() != slug else slug, slug)
            for slug, name in hits[:MAX_CHOICES]
        ]

    def match_deals(self, current: str) -> list[str]:
        """Deal ids containing the typed text, those that start with it first."""
        text = current.strip().lower().removeprefix("deal:")
        return self.deals.containing(text, MAX_CHOICES)
