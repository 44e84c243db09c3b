"""The in-memory index behind autocomplete: lab slugs and names, deal ids (read in full on
start-up, then merged with what is written)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from events.envelope import RecordedEvent
from events.parties import PartyRegistry
from events.payloads import DealReported
from store.log import EventStore
from store.queries import Queries
from store.rows import deal_id_of

MAX_CHOICES = 25  # Discord shows at most 25 autocomplete choices
# Past this many new ids a merge sorts them all again (one write adds one or two).
INSERT_AT_MOST = 8
# Catching up with more events than this written by others reads the store's deals anew:
# reading ~25 us an event, 5,000 take about as long as that (~0.13 s at 1M events).
CATCH_UP_AT_MOST = 5_000


@dataclass(frozen=True, eq=False)
class DealIds:
    """Sorted deal ids, also joined by newlines with where each starts in that text: a large
    log has hundreds of thousands of deals, and autocomplete runs on the event loop."""

    ids: list[str]
    text: str
    starts: npt.NDArray[np.int64]  # numpy: a merge shifts the starts after a new id at C speed

    @classmethod
    def of(cls, ids: Iterable[str]) -> DealIds:
        ids = sorted(ids)
        lengths = np.fromiter((len(d) + 1 for d in ids), dtype=np.int64, count=len(ids))
        starts = np.concatenate(([0], np.cumsum(lengths[:-1]))) if ids else lengths
        return cls(ids, "\n".join(ids), starts)

    def __contains__(self, deal_id: object) -> bool:
        if not isinstance(deal_id, str):
            return False
        i = bisect.bisect_left(self.ids, deal_id)
        return i < len(self.ids) and self.ids[i] == deal_id

    def with_ids(self, new: Iterable[str]) -> DealIds:
        """These ids and the new ones (self if none is new): a few are inserted into copies,
        which costs a copy of the list and of the text instead of sorting and joining anew."""
        added = sorted({d for d in new if d not in self})
        if len(added) > INSERT_AT_MOST:
            return DealIds.of([*self.ids, *added])
        merged = self
        for deal_id in added:
            merged = merged._with(deal_id)
        return merged

    def _with(self, deal_id: str) -> DealIds:
        i = bisect.bisect_left(self.ids, deal_id)
        ids = self.ids.copy()
        ids.insert(i, deal_id)
        if i < len(self.ids):
            at = int(self.starts[i])
            text = "".join((self.text[:at], deal_id, "\n", self.text[at:]))
        elif self.ids:
            at = len(self.text) + 1
            text = self.text + "\n" + deal_id
        else:
            at, text = 0, deal_id
        starts = np.concatenate((self.starts[:i], [at], self.starts[i:] + (len(deal_id) + 1)))
        return DealIds(ids, text, starts)

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
            i = int(np.searchsorted(self.starts, found, side="right")) - 1
            if not self.ids[i].startswith(text):  # those are listed already
                hits.append(self.ids[i])
            position = int(self.starts[i + 1]) if i + 1 < len(self.starts) else len(self.text)
        return hits


@dataclass
class SearchIndex:
    """What autocomplete offers: `refresh` reads it from the store (on start-up), `catch_up`
    merges what was written since (after a write; call both off the loop).

    Each changes the index by assigning whole new values, so a reader on the event loop sees
    the old or the new ones; the writers take turns (a lock), so none loses another's ids."""

    labs: dict[str, str] = field(default_factory=dict)  # slug -> display name
    deals: DealIds = field(default_factory=lambda: DealIds.of([]))
    # The log's head up to which the index holds every deal (catch_up reads the events after it).
    seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def deal_ids(self) -> list[str]:
        return self.deals.ids

    def refresh(self, store: EventStore, registry: PartyRegistry) -> None:
        with self._lock:
            self._refresh(store, registry)

    def catch_up(self, store: EventStore, registry: PartyRegistry) -> None:
        """Merge the events written since `seen` (by the bot, the HTTP API, the feeds): reads
        only those (~25 us each), or the store's deals anew if they are many."""
        with self._lock:
            head = store.head
            if head - self.seen > CATCH_UP_AT_MOST:
                self._refresh(store, registry)
            elif head > self.seen:
                self._merge(store.read_all(after=self.seen, limit=head - self.seen), registry)
                self.seen = head

    def _refresh(self, store: EventStore, registry: PartyRegistry) -> None:
        head = store.head  # first: the deals read below include every one up to it
        deal_ids = store.deal_ids()
        slugs = {p.slug for p in registry.labs()} | set(Queries(store).labs_with_deals())
        self.labs = {s: _name(registry, s) for s in sorted(slugs)}
        self.deals = DealIds.of(deal_ids)  # one assignment: a reader sees the old or the new
        self.seen = max(self.seen, head)

    def _merge(self, events: Iterable[RecordedEvent], registry: PartyRegistry) -> None:
        """Add the deals the events report, and those deals' labs. Nothing else changes the
        index: a deal's lab is that of its DealReported, and a retracted deal stays (as in
        refresh: store.deal_ids() keeps it)."""
        reported = {
            deal: e.payload.lab
            for e in events
            if isinstance(e.payload, DealReported) and (deal := deal_id_of(e.stream_id))
        }
        new_labs = set(reported.values()) - self.labs.keys()
        if new_labs:
            slugs = sorted(self.labs.keys() | new_labs)
            self.labs = {s: self.labs.get(s) or _name(registry, s) for s in slugs}
        self.deals = self.deals.with_ids(reported)

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


def _name(registry: PartyRegistry, slug: str) -> str:
    return registry.get(slug).name if slug in registry else slug
