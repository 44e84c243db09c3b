"""Opening the store the way every surface needs it: migrated, seeded, with its command context."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot.commands.catalog import build_registry
from bot.commands.registry import CommandContext, CommandRegistry
from events.ledger import bundled_ledger
from events.parties import default_registry
from store.clock import Clock, SystemClock
from store.log import AppendResult, EventStore
from store.queries import Queries

log = logging.getLogger(__name__)


def seed_ledger(store: EventStore) -> AppendResult:
    """Import the bundled ledger; idempotent (every ledger event has a stable key)."""
    return store.append(list(bundled_ledger()))


@dataclass
class Services:
    """The store with what reads it: the command context and the command registry."""

    store: EventStore
    context: CommandContext
    commands: CommandRegistry

    def close(self) -> None:
        self.store.close()


def open_services(db: Path, *, seed: bool = True, clock: Clock | None = None) -> Services:
    """Open (and create if needed) the database; a new, empty one gets the bundled ledger."""
    store = EventStore(db, clock=clock or SystemClock())
    if seed and store.head == 0:
        result = seed_ledger(store)
        log.info("seeded %s with %d events of the bundled ledger", db, len(result.recorded))
    context = CommandContext(queries=Queries(store), registry=default_registry(), clock=store.clock)
    return Services(store=store, context=context, commands=build_registry())
