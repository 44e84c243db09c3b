"""`computewatch run` as a real subprocess (headless: the HTTP API until a signal), and a client
that streams batches of events to it with idempotency keys and expected versions.

Used by the crash suite and the backup tests; the checks of a log are here too, so that every
test that attacks the running bot asks the same questions of what it left behind.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp

from store.log import EventStore
from store.projections import rebuild_projections
from store.queries import Position, Queries

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "crash-test-token-5e1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LABS = ("openai", "anthropic", "xai", "meta")
PROVIDERS = ("google", "amazon", "oracle", "coreweave", "microsoft")
STATUSES = ("rumored", "negotiating", "loi", "signed", "operational", "shelved", "cancelled")
# Far after every event: positions folded from the log at this (as_of, known_at) must equal the
# maintained "now" answer.
FAR = datetime(2100, 1, 1, tzinfo=UTC)
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

# The read models users see (DESIGN.md, public contracts), read before and after
# store.projections.rebuild_projections in one transaction: what the appends maintained must be
# what a rebuild from the log makes.
PUBLIC_READS = (
    "SELECT * FROM deal_current ORDER BY deal_id",
    "SELECT * FROM deals ORDER BY deal_id",
    "SELECT * FROM lab_positions() ORDER BY lab",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HeadlessBot:
    """`computewatch run` with no terminal and no Discord token: it serves the HTTP API until
    SIGTERM/SIGINT. Output goes to `log`, which a failing test shows."""

    def __init__(self, db: Path, log: Path, *, seed: bool = True) -> None:
        self.db = db
        self.log = log
        self.seed = seed
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("COMPUTEWATCH_", "DISCORD_"))
        }
        env.update(
            COMPUTEWATCH_DB=str(self.db),
            COMPUTEWATCH_SEED="true" if self.seed else "false",
            COMPUTEWATCH_API_HOST="127.0.0.1",
            COMPUTEWATCH_API_PORT=str(self.port),
            COMPUTEWATCH_API_TOKEN=TOKEN,
            COMPUTEWATCH_FEEDS="",
        )
        return env

    def start(self) -> None:
        assert self.proc is None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"],
                cwd=self.db.parent,  # no .env of the developer's is read
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, http: aiohttp.ClientSession, timeout_s: float = 60) -> float:
        """Seconds until GET /health answers; fails with the bot's output if it never does."""
        assert self.proc is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the bot exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                async with http.get(f"{self.url}/health") as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
        raise AssertionError(f"the bot did not answer within {timeout_s} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait: pending writes finish and the database closes."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self.proc = None
        return code

    def output(self, tail: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-tail:] if self.log.exists() else ""


@dataclass
class Batch:
    """One POST /events body and what the client expects of it."""

    name: str
    events: list[dict[str, Any]]

    @property
    def keys(self) -> list[str]:
        return [e["idempotency_key"] for e in self.events]


@dataclass
class Writer:
    """A client that owns its deals (so it never meets a conflict) and sends one batch at a
    time: new deals with their first events, revisions, status changes, capacity online,
    counterparties, links between its deals and retractions of its earlier events. Every
    event has an idempotency key and an expected version."""

    name: str
    rng: random.Random
    versions: dict[str, int] = field(default_factory=dict)  # acknowledged, per stream
    retractable: list[tuple[str, str]] = field(default_factory=list)  # (stream, event id)
    acked: list[Batch] = field(default_factory=list)
    in_flight: Batch | None = None
    sent = 0

    def next_batch(self) -> Batch:
        rng = self.rng
        self.sent += 1
        name = f"{self.name}-b{self.sent}"
        planned: dict[str, int] = {}
        events: list[dict[str, Any]] = []

        def add(stream: str, type_name: str, payload: dict[str, Any]) -> None:
            version = planned.get(stream, self.versions.get(stream, 0))
            planned[stream] = version + 1
            events.append(
                {
                    "stream_id": stream,
                    "type": type_name,
                    "payload": payload,
                    "occurred_at": (EPOCH + timedelta(hours=rng.randint(0, 8000))).isoformat(),
                    "source_url": f"https://news.example.com/{stream[5:]}/{len(events)}",
                    "event_id": str(uuid4()),
                    "idempotency_key": f"{name}-e{len(events)}",
                    "expected_version": version,
                }
            )

        if not self.versions or rng.random() < 0.3:
            stream = f"deal:{self.name}-deal-{len(self.versions)}"
            provider = rng.choice(PROVIDERS)
            add(
                stream,
                "DealReported",
                {
                    "lab": rng.choice(LABS),
                    "kind": rng.choice(("cloud_contract", "datacenter_lease")),
                    "status": rng.choice(STATUSES),
                    "counterparties": [{"party": provider, "role": "provider"}],
                    "capacity_mw": rng.randint(1, 50) * 50,
                    "value_usd": rng.randint(1, 40) * 5e8,
                    "title": f"crash-test deal {stream}",
                },
            )
            streams = [stream]
        else:
            streams = rng.sample(
                sorted(self.versions), k=min(len(self.versions), rng.randint(1, 2))
            )
        for stream in streams:
            for _ in range(rng.randint(1, 4)):
                self._add_fact(stream, add)
        return Batch(name, events)

    def _add_fact(self, stream: str, add: Any) -> None:
        rng = self.rng
        choice = rng.choice(("terms", "status", "online", "joined", "source", "link", "retract"))
        others = [s for s in self.versions if s != stream]
        mine = [r for r in self.retractable if r[0] == stream]
        if choice == "link" and others:
            add(
                stream,
                "DealsLinked",
                {
                    "relation": rng.choice(("overlaps", "part_of")),
                    "other_deal": rng.choice(others)[5:],
                },
            )
        elif choice == "retract" and mine:
            target = rng.choice(mine)
            self.retractable.remove(target)  # never twice, even if this batch is lost
            add(
                stream, "EventRetracted", {"event_id": target[1], "reason": "crash-test correction"}
            )
        elif choice == "status":
            add(stream, "DealStatusChanged", {"status": rng.choice(STATUSES)})
        elif choice == "online":
            add(stream, "CapacityCameOnline", {"mw": rng.randint(1, 20) * 10})
        elif choice == "joined":
            add(stream, "CounterpartyJoined", {"party": rng.choice(PROVIDERS), "role": "landlord"})
        elif choice == "source":
            add(stream, "SourceAdded", {"note": "corroborated"})
        else:
            add(stream, "DealTermsRevised", {"capacity_mw": rng.randint(1, 60) * 50})

    def acknowledge(self, batch: Batch, body: dict[str, Any], status: int) -> None:
        """Record a batch the bot confirmed; it must have been stored whole, exactly once."""
        new, duplicates = body["new"], body["duplicates"]
        assert (new, duplicates) in ((len(batch.events), 0), (0, len(batch.events))), (
            f"batch {batch.name} was stored in part: {body}"
        )
        assert status == (201 if new else 200), (status, body)
        for event in batch.events:
            stream = event["stream_id"]
            assert self.versions.get(stream, 0) == event["expected_version"], (batch.name, event)
            self.versions[stream] = event["expected_version"] + 1
            if event["type"] != "EventRetracted":
                self.retractable.append((stream, event["event_id"]))
        if new:
            stored = [(e["stream_id"], e["version"]) for e in body["events"]]
            assert stored == [(e["stream_id"], e["expected_version"] + 1) for e in batch.events]
        self.acked.append(batch)
        self.in_flight = None

    async def post(self, http: aiohttp.ClientSession, url: str, batch: Batch) -> bool:
        """Send a batch; True when the bot confirmed it, False when the bot died meanwhile."""
        self.in_flight = batch
        try:
            async with http.post(f"{url}/events", json=batch.events, headers=AUTH) as response:
                body = await response.json()
                status = response.status
        except (TimeoutError, aiohttp.ClientError):
            return False
        assert status in (200, 201), f"batch {batch.name}: {status} {body}"
        self.acknowledge(batch, body, status)
        return True

    async def stream(self, http: aiohttp.ClientSession, url: str) -> None:
        """Send batches one after another until the bot dies (or the task is cancelled)."""
        while await self.post(http, url, self.next_batch()):
            pass


# -- checks of a log ----------------------------------------------------------------------
@dataclass
class LogCheck:
    """What a log holds: its events by idempotency key, and the positions it answers."""

    head: int
    keys: dict[str, tuple[str, int, int]]  # key -> (stream, version, seq)
    ledger_events: int


def check_log(db: Path, batches: list[Batch], *, acked: list[Batch]) -> LogCheck:
    """The invariants of a log after any crash: it opens; seq is 1..n; every stream's versions
    are 1..n; every key is stored once; no batch is stored in part; every confirmed batch is
    there; the maintained read models equal a rebuild, and positions "now" a fold of the log."""
    with EventStore(db) as store:
        events = list(store.read_all())
        head = store.head
        queries = Queries(store)
        maintained, rebuilt = read_models_before_and_after_a_rebuild(store)
        now = queries.positions()
        replayed = queries.positions(as_of=FAR, known_at=FAR)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)) and head == len(events)
    by_stream: dict[str, list[int]] = defaultdict(list)
    for e in events:
        by_stream[e.stream_id].append(e.version)
    gaps = {s: v for s, v in by_stream.items() if v != list(range(1, len(v) + 1))}
    assert not gaps, f"streams with gaps or repeats: {gaps}"
    counts = Counter(e.idempotency_key for e in events)
    assert max(counts.values(), default=1) == 1
    keys = {e.idempotency_key: (e.stream_id, e.version, e.seq) for e in events}
    for batch in batches:
        present = [k in keys for k in batch.keys]
        assert all(present) or not any(present), f"batch {batch.name} is stored in part"
    lost = [b.name for b in acked if b.keys[0] not in keys]
    assert not lost, f"confirmed batches lost: {lost}"
    ledger = sum(1 for e in events if e.actor == "ledger")
    assert maintained == rebuilt, "the maintained read models differ from a rebuild"
    assert positions_json(now) == positions_json(replayed), "positions differ from a replay"
    return LogCheck(head=head, keys=keys, ledger_events=ledger)


def read_models_before_and_after_a_rebuild(store: EventStore) -> tuple[Any, Any]:
    """The public read models as maintained, and as a rebuild from the log makes them (rolled
    back: the database is not changed)."""
    cur = store.cursor()
    cur.execute("BEGIN TRANSACTION")
    try:
        maintained = [_rounded(cur.execute(q).fetchall()) for q in PUBLIC_READS]
        rebuild_projections(cur)
        rebuilt = [_rounded(cur.execute(q).fetchall()) for q in PUBLIC_READS]
    finally:
        cur.execute("ROLLBACK")
    return maintained, rebuilt


def positions_json(positions: list[Position]) -> list[Any]:
    """Positions without their (as_of, known_at) stamp, to compare two ways of answering; sums
    are rounded to 12 significant digits (two orders of addition differ in the last bit)."""
    return _rounded([p.model_dump(mode="json", exclude={"as_of", "known_at"}) for p in positions])


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value
