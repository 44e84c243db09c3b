"""The in-memory index behind autocomplete: lab slugs and names, deal ids (refreshed on writes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from events.parties import PartyRegistry
from store.log import EventStore

MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices


@dataclass
class SearchIndex:
    """What autocomplete offers; `refresh` rebuilds it from the store (call it off the loop)."""

    labs: dict[str, str] = field(default_factory=dict)  # slug -> display name
    deal_ids: list[str] = field(default_factory=list)

    def refresh(self, store: EventStore, registry: PartyRegistry) -> None:
        deal_ids = store.deal_ids()
        slugs = {p.slug for p in registry.labs()} | {
            lab for d in deal_ids if (lab := store.lab_of(d))
        }
        self.labs = {s: (registry.get(s).name if s in registry else s) for s in sorted(slugs)}
        self.deal_ids = deal_ids

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
        text = current.strip().lower().removeprefix("deal:")
        hits = [d for d in self.deal_ids if text in d]
        hits.sort(key=lambda d: (not d.startswith(text), d))
        return hits[:MAX_CHOICES]
