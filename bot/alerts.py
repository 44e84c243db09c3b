"""Alerts: rules kept as events, parsed from user text, checked against positions, fired once.

A rule is the stream `alert:<rule_id>`: AlertRuleAdded (with the channel it was set in, the
member as actor), one AlertFired per crossing, maybe AlertRuleRemoved.

A position rule (a lab's metric >= or <= a threshold) fires when its condition becomes true.
It re-arms only once the condition is seen false again, and fires no sooner than a cooldown
after its last firing (a figure that flaps around the threshold posts once an hour at most).
Whether a rule is armed is kept in memory; the firings are in the log, so after a restart a rule
whose condition still holds counts as fired already: one crossing never posts twice, at the
price of missing a dip and rise that happened entirely while the bot was down. A rule added
while its condition already held waits for the next crossing; the value known when the rule was
recorded decides that, so it does not depend on when the evaluator first looks.

A "new deal" rule (metric new_deal_gw, for one lab or any) fires once for each deal first
recorded after the rule whose capacity reaches the threshold; the deal id is the crossing key.

AlertFired is appended before the post (idempotency key `alert-fired:<rule>:<crossing>` and the
stream's expected version), so two evaluators never post one crossing twice; a post that fails
after that is logged and not retried (at most once, as for the digest).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, cast

from bot.answers import Answer, Fact, Source, Table
from bot.commands.options import parse_choice, parse_party
from bot.commands.positions import METRICS, format_metric, metric_value
from bot.errors import UserInputError
from bot.formats import day, gw
from bot.schedule import Poster
from events.envelope import NewEvent, RecordedEvent
from events.parties import PartyRegistry
from events.payloads import AlertFired, AlertMetric, AlertRuleAdded, AlertRuleRemoved
from store.alert_queries import NewDeal, alert_events, new_deals
from store.clock import Clock
from store.errors import ConcurrencyError, IdempotencyKeyReuseError
from store.facade import AsyncEventStore
from store.queries import Queries

log = logging.getLogger(__name__)

Op = Literal[">=", "<="]
DEAL_METRIC = "new_deal_gw"
ALERT_METRICS: tuple[str, ...] = (*METRICS, DEAL_METRIC)
ANY_LAB = ("any", "all", "*", "any lab")
DEFAULT_COOLDOWN = timedelta(hours=1)
EPSILON = 1e-9  # float noise: 5.0 GW summed from parts must still reach ">= 5"
MAX_DEALS_SHOWN = 10
OP_SYMBOL = {">=": "≥", "<=": "≤"}

_OPS: dict[str, Op] = {
    ">=": ">=",
    ">": ">=",
    "≥": ">=",
    "=>": ">=",
    "over": ">=",
    "above": ">=",
    "at least": ">=",
    "<=": "<=",
    "<": "<=",
    "≤": "<=",
    "=<": "<=",
    "below": "<=",
    "under": "<=",
    "at most": "<=",
}
_THRESHOLD = re.compile(
    r"^(?P<op>>=|<=|=>|=<|≥|≤|>|<|over|above|at least|below|under|at most)?\s*"
    r"(?P<number>\$?\s*(?:\d[\d,]*(?:\.\d+)?|\.\d+))\s*(?P<unit>[a-z]*)$",
    re.IGNORECASE,
)
_GW_UNITS = {"": 1.0, "gw": 1.0, "mw": 0.001}
_USD_UNITS = {
    "": 1.0,
    "k": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
    "t": 1e12,
    "tn": 1e12,
    "trillion": 1e12,
}
_DEAL_UNITS = {"": 1.0, "deal": 1.0, "deals": 1.0}
_MAX = {"gw": 10_000.0, "usd": 1e14, "deals": 100_000.0}


# -- rules ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleSpec:
    """What a rule watches: a lab (None: any lab, new-deal rules only), a metric, a threshold
    in the metric's unit (GW, dollars or deals)."""

    lab: str | None
    metric: str
    op: Op
    threshold: float

    @property
    def watches_deals(self) -> bool:
        return self.metric == DEAL_METRIC


@dataclass(frozen=True)
class Firing:
    crossing_key: str
    value: float
    recorded_at: datetime


@dataclass(frozen=True)
class AlertRule:
    """A rule as the log knows it: who set it where, its firings, whether it was removed."""

    rule_id: str
    channel_id: str
    spec: RuleSpec
    actor: str
    added_at: datetime
    version: int
    firings: tuple[Firing, ...] = ()
    removed: bool = False

    @property
    def stream_id(self) -> str:
        return f"alert:{self.rule_id}"

    @property
    def last_fired_at(self) -> datetime | None:
        return max((f.recorded_at for f in self.firings), default=None)

    def fired_for(self, crossing_key: str) -> bool:
        return any(f.crossing_key == crossing_key for f in self.firings)


def fold_rules(events: Iterable[RecordedEvent]) -> dict[str, AlertRule]:
    """Every rule of the log, removed ones included, from its alert events in log order."""
    rules: dict[str, AlertRule] = {}
    for e in events:
        p = e.payload
        if isinstance(p, AlertRuleAdded):
            spec = RuleSpec(lab=p.lab, metric=p.metric, op=p.op, threshold=p.threshold)
            rules[p.rule_id] = AlertRule(
                rule_id=p.rule_id,
                channel_id=p.channel_id,
                spec=spec,
                actor=e.actor,
                added_at=e.recorded_at,
                version=e.version,
            )
        elif isinstance(p, AlertFired) and p.rule_id in rules:
            rule = rules[p.rule_id]
            firing = Firing(p.crossing_key, p.value, e.recorded_at)
            rules[p.rule_id] = replace(rule, firings=(*rule.firings, firing), version=e.version)
        elif isinstance(p, AlertRuleRemoved) and p.rule_id in rules:
            rules[p.rule_id] = replace(rules[p.rule_id], removed=True, version=e.version)
    return rules


def load_rules(queries: Queries) -> dict[str, AlertRule]:
    return fold_rules(alert_events(queries.store))


def active_rules(rules: Mapping[str, AlertRule]) -> list[AlertRule]:
    return sorted((r for r in rules.values() if not r.removed), key=lambda r: r.added_at)


# -- parsing user input -----------------------------------------------------------------------
def parse_lab_or_any(registry: PartyRegistry, text: str) -> str | None:
    """A party's slug, or None for "any" (every lab)."""
    if text.strip().lower() in ANY_LAB:
        return None
    return parse_party(registry, text, option="lab")


def _unit_family(metric: str) -> str:
    if metric.endswith("_gw"):
        return "gw"
    if metric.endswith("_usd"):
        return "usd"
    return "deals"


def parse_threshold(metric: str, text: str) -> tuple[Op, float]:
    """'>= 5', '5 GW', 'over 500 MW', '<= $20B' -> (op, value in the metric's unit)."""
    family = _unit_family(metric)
    example = {"gw": "'>= 5' (GW) or '>= 500 MW'", "usd": "'>= $20B'", "deals": "'>= 10'"}[family]
    match = _THRESHOLD.match(" ".join(text.strip().split()))
    if not match:
        raise UserInputError(
            f"threshold: {text!r} is not a threshold; write e.g. {example} "
            "(>= fires when the figure reaches it, <= when it falls to it)"
        )
    op = _OPS[(match["op"] or ">=").lower()]
    units = {"gw": _GW_UNITS, "usd": _USD_UNITS, "deals": _DEAL_UNITS}[family]
    unit = match["unit"].lower()
    if unit not in units:
        raise UserInputError(
            f"threshold: {match['unit']!r} is not a unit for {metric}; write e.g. {example}"
        )
    value = float(match["number"].replace("$", "").replace(",", "").strip()) * units[unit]
    if value > _MAX[family]:
        raise UserInputError(f"threshold: {text.strip()!r} is larger than any plausible figure")
    if family == "deals" and value != int(value):
        raise UserInputError(f"threshold: {metric} counts deals; use a whole number")
    if op == ">=" and value <= 0:
        raise UserInputError("threshold: a figure is always >= 0; give a positive threshold")
    return op, value


def parse_rule(registry: PartyRegistry, lab: str, metric: str, threshold: str) -> RuleSpec:
    """A rule from the three texts of `/alert add lab metric threshold`; clear errors only."""
    slug = parse_lab_or_any(registry, lab)
    chosen = parse_choice(metric, ALERT_METRICS, option="metric")
    op, value = parse_threshold(chosen, threshold)
    if chosen == DEAL_METRIC and op != ">=":
        raise UserInputError(f"threshold: {DEAL_METRIC} alerts on deals of at least a size; use >=")
    if chosen != DEAL_METRIC and slug is None:
        raise UserInputError(
            f"lab: {chosen} is a lab's figure, so name the lab (e.g. anthropic); "
            f"'any' works with {DEAL_METRIC} (any new deal over a size)"
        )
    return RuleSpec(lab=slug, metric=chosen, op=op, threshold=value)


def next_rule_id(spec: RuleSpec, taken: Collection[str]) -> str:
    """A short id users can type: <lab>-<n> (or any-<n>), never one used before."""
    base = re.sub(r"[^a-z0-9]+", "-", spec.lab or "any").strip("-")[:50] or "rule"
    n = 1
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def rule_added_event(
    spec: RuleSpec, rule_id: str, channel_id: str, actor: str, now: datetime
) -> NewEvent:
    payload = AlertRuleAdded(
        rule_id=rule_id,
        channel_id=channel_id,
        lab=spec.lab,
        metric=cast(AlertMetric, spec.metric),
        op=spec.op,
        threshold=spec.threshold,
    )
    return NewEvent(
        stream_id=f"alert:{rule_id}",
        payload=payload,
        occurred_at=now,
        actor=actor,
        expected_version=0,
    )


def rule_removed_event(rule: AlertRule, actor: str, now: datetime) -> NewEvent:
    return NewEvent(
        stream_id=rule.stream_id,
        payload=AlertRuleRemoved(rule_id=rule.rule_id),
        occurred_at=now,
        actor=actor,
        expected_version=rule.version,
    )


# -- describing -------------------------------------------------------------------------------
def _name(registry: PartyRegistry | None, slug: str | None) -> str:
    if slug is None:
        return "any lab"
    return registry.get(slug).name if registry is not None and slug in registry else slug


def format_threshold(spec: RuleSpec) -> str:
    metric = "committed_gw" if spec.watches_deals else spec.metric
    return f"{OP_SYMBOL[spec.op]} {format_metric(metric, spec.threshold)}"


def describe(spec: RuleSpec, registry: PartyRegistry | None = None) -> str:
    """'Anthropic contracted_gw ≥ 5 GW', 'any new deal ≥ 1 GW', 'new OpenAI deal ≥ 1 GW'."""
    if spec.watches_deals:
        who = "any new deal" if spec.lab is None else f"new {_name(registry, spec.lab)} deal"
        return f"{who} {format_threshold(spec)}"
    return f"{_name(registry, spec.lab)} {spec.metric} {format_threshold(spec)}"


def holds(spec: RuleSpec, value: float) -> bool:
    if spec.op == ">=":
        return value >= spec.threshold - EPSILON
    return value <= spec.threshold + EPSILON


def _set_by(actor: str) -> str:
    return f"<@{actor.removeprefix('discord:')}>" if actor.startswith("discord:") else actor


# -- the command layer: /alert list -----------------------------------------------------------
def alerts_answer(
    queries: Queries,
    registry: PartyRegistry,
    *,
    lab: str | None = None,
    metric: str | None = None,
    channel_id: str | None = None,
) -> Answer:
    """The rules in force, with the figure each watches as it stands now."""
    rules = [
        r
        for r in active_rules(load_rules(queries))
        if (lab is None or r.spec.lab == lab)
        and (metric is None or r.spec.metric == metric)
        and (channel_id is None or r.channel_id == channel_id)
    ]
    labs = sorted({r.spec.lab for r in rules if r.spec.lab and not r.spec.watches_deals})
    positions = {p.lab: p for p in queries.positions(labs)} if labs else {}
    rows, data = [], []
    for r in rules:
        now: float | None = None
        if not r.spec.watches_deals and r.spec.lab in positions:
            now = metric_value(positions[r.spec.lab], r.spec.metric)
        last = r.last_fired_at
        rows.append(
            [
                r.rule_id,
                describe(r.spec, registry),
                "—" if now is None else format_metric(r.spec.metric, now),
                day(last) if last else "never",
                f"#{r.channel_id}",
            ]
        )
        data.append(
            {
                "rule_id": r.rule_id,
                "channel_id": r.channel_id,
                "lab": r.spec.lab,
                "metric": r.spec.metric,
                "op": r.spec.op,
                "threshold": r.spec.threshold,
                "value": now,
                "fired": len(r.firings),
                "last_fired_at": last.isoformat() if last else None,
                "set_by": r.actor,
                "added_at": r.added_at.isoformat(),
            }
        )
    return Answer(
        command="alert",
        title=f"Alerts ({len(rules)})",
        summary=None
        if rules
        else "No alert is set. Analysts set one with /alert add <lab> <metric> <threshold>, "
        "e.g. /alert add anthropic contracted_gw >=5, or /alert add any new_deal_gw 1.",
        table=Table(
            columns=["id", "rule", "now", "last fired", "channel"],
            rows=rows,
            numeric=[False, False, True, False, False],
        )
        if rows
        else None,
        notes=[
            "An alert posts in its channel within a minute of the change that crosses it, once "
            "per crossing; /alert remove <id> stops it."
        ]
        if rows
        else [],
        data={"rules": data},
    )


def rule_added_answer(
    rule_id: str, spec: RuleSpec, now: float | None, registry: PartyRegistry
) -> Answer:
    """The reply to /alert add: what will be posted here, and where the figure stands."""
    facts = [Fact(name="Rule", value=describe(spec, registry)), Fact(name="Id", value=rule_id)]
    notes = []
    if now is not None:
        facts.append(Fact(name="Now", value=format_metric(spec.metric, now)))
        if holds(spec, now):
            notes.append(
                f"It holds already ({format_metric(spec.metric, now)}): the alert fires the "
                "next time the figure crosses the threshold, after going back past it."
            )
    if spec.watches_deals:
        summary = f"Posts here for each {describe(spec, registry)} recorded from now on."
    else:
        summary = f"Posts here when {describe(spec, registry)}."
    return Answer(
        command="alert",
        title=f"Alert {rule_id} set",
        summary=summary,
        facts=facts,
        notes=notes,
        data={"rule_id": rule_id, "value": now, **_spec_json(spec)},
    )


def _spec_json(spec: RuleSpec) -> dict[str, object]:
    return {"lab": spec.lab, "metric": spec.metric, "op": spec.op, "threshold": spec.threshold}


def current_value(queries: Queries, spec: RuleSpec) -> float | None:
    """The figure a position rule watches, as it stands now; None for a new-deal rule."""
    if spec.watches_deals or spec.lab is None:
        return None
    return metric_value(queries.position(spec.lab), spec.metric)


# -- evaluation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """What one evaluation reads: the active rules, the figures now, the new deals."""

    rules: list[AlertRule]
    values: dict[str, float]  # rule id -> the figure now (position rules)
    at_add: dict[str, float]  # rule id -> the figure known when the rule was recorded
    deals: list[NewDeal]


@dataclass(frozen=True)
class Trigger:
    """A rule to fire now: one crossing of a position rule, or new deals of a deal rule."""

    rule: AlertRule
    value: float
    crossings: tuple[str, ...]
    deals: tuple[NewDeal, ...] = ()


@dataclass(frozen=True)
class AlertOutcome:
    rule_id: str
    status: str  # "posted", "fired_elsewhere", "failed"
    message_id: str | None = None


def read_snapshot(queries: Queries, seen: Collection[str]) -> Snapshot:
    """Read what `decide` needs; the figure at the time a rule was recorded only for rules the
    evaluator has not seen yet, that never fired and whose condition holds now."""
    rules = active_rules(load_rules(queries))
    position_rules = [r for r in rules if not r.spec.watches_deals and r.spec.lab]
    labs = sorted({cast(str, r.spec.lab) for r in position_rules})
    now = {p.lab: p for p in queries.positions(labs)} if labs else {}
    values = {
        r.rule_id: metric_value(now[cast(str, r.spec.lab)], r.spec.metric) for r in position_rules
    }
    at_add = {}
    for r in position_rules:
        # Only a new rule whose condition holds now needs to know whether it held when it was
        # added (else it is armed either way): a fold of the log, so done as rarely as that.
        if r.rule_id not in seen and not r.firings and holds(r.spec, values[r.rule_id]):
            then = queries.position(cast(str, r.spec.lab), known_at=r.added_at)
            at_add[r.rule_id] = metric_value(then, r.spec.metric)
    deal_rules = [r for r in rules if r.spec.watches_deals]
    deals: list[NewDeal] = []
    if deal_rules:
        since = min(r.added_at for r in deal_rules)
        min_mw = min(r.spec.threshold for r in deal_rules) * 1000 - EPSILON
        deals = new_deals(queries.store, since, min_mw)
    return Snapshot(rules=rules, values=values, at_add=at_add, deals=deals)


def decide(
    snapshot: Snapshot, armed: Mapping[str, bool], now: datetime, cooldown: timedelta
) -> tuple[list[Trigger], dict[str, bool]]:
    """Which rules fire now, and the armed state after this evaluation (pure)."""
    state: dict[str, bool] = {}
    triggers: list[Trigger] = []
    for rule in snapshot.rules:
        if rule.spec.watches_deals:
            fresh = tuple(
                d
                for d in snapshot.deals
                if d.recorded_at > rule.added_at
                and (rule.spec.lab is None or d.lab == rule.spec.lab)
                and holds(rule.spec, d.capacity_mw / 1000)
                and not rule.fired_for(f"deal:{d.deal_id}")
            )
            if fresh:
                triggers.append(
                    Trigger(
                        rule=rule,
                        value=max(d.capacity_mw for d in fresh) / 1000,
                        crossings=tuple(f"deal:{d.deal_id}" for d in fresh),
                        deals=fresh,
                    )
                )
            continue
        if rule.rule_id not in snapshot.values:
            continue
        value = snapshot.values[rule.rule_id]
        if rule.rule_id in armed:
            is_armed = armed[rule.rule_id]
        elif rule.firings:
            is_armed = False  # after a restart: a crossing still holding has been posted
        else:
            is_armed = not holds(rule.spec, snapshot.at_add.get(rule.rule_id, value))
        if not holds(rule.spec, value):
            state[rule.rule_id] = True
            continue
        last = rule.last_fired_at
        if is_armed and (last is None or now - last >= cooldown):
            crossing = f"crossing-{len(rule.firings) + 1}"
            triggers.append(Trigger(rule=rule, value=value, crossings=(crossing,)))
            is_armed = False
        state[rule.rule_id] = is_armed
    return triggers, state


def fired_events(trigger: Trigger, now: datetime) -> list[NewEvent]:
    rule = trigger.rule
    values = [d.capacity_mw / 1000 for d in trigger.deals] if trigger.deals else [trigger.value]
    return [
        NewEvent(
            stream_id=rule.stream_id,
            payload=AlertFired(rule_id=rule.rule_id, value=value, crossing_key=key),
            occurred_at=now,
            actor="system",
            idempotency_key=f"alert-fired:{rule.rule_id}:{key}",
            expected_version=rule.version + i,
        )
        for i, (key, value) in enumerate(zip(trigger.crossings, values, strict=True))
    ]


def fired_answer(queries: Queries, registry: PartyRegistry, trigger: Trigger) -> Answer:
    """The post of a fired alert: the figure or the deals, and the sources behind them."""
    rule, spec = trigger.rule, trigger.rule.spec
    set_by = f"Rule {rule.rule_id}, set by {_set_by(rule.actor)} on {day(rule.added_at)}."
    if trigger.deals:
        shown = trigger.deals[:MAX_DEALS_SHOWN]
        rows = [
            [_name(registry, d.lab), d.title or d.deal_id, gw(d.capacity_mw), d.status]
            for d in shown
        ]
        more = len(trigger.deals) - len(shown)
        sources = [
            Source(title=f"{d.deal_id}: {d.source_title or d.title or 'report'}"[:200], url=url)
            for d in shown
            if (url := d.source_url)
        ]
        first = trigger.deals[0]
        title = (
            f"Alert: new deal over {gw(spec.threshold * 1000)}: "
            f"{_name(registry, first.lab)}, {gw(first.capacity_mw)}"
            if len(trigger.deals) == 1
            else f"Alert: {len(trigger.deals)} new deals over {gw(spec.threshold * 1000)}"
        )
        return Answer(
            command="alert",
            title=title,
            summary=set_by,
            table=Table(columns=["lab", "deal", "capacity", "status"], rows=rows),
            sources=sources,
            notes=[f"…and {more} more (/deals lists them)."] if more else [],
            data={
                "rule_id": rule.rule_id,
                "deals": [d.deal_id for d in trigger.deals],
                **_spec_json(spec),
            },
        )
    lab = cast(str, spec.lab)
    value = format_metric(spec.metric, trigger.value)
    recent = sorted(queries.counting([lab]), key=lambda d: d.last_event_at, reverse=True)[:3]
    events = sorted(
        (e for e in queries.sources([d.deal_id for d in recent]) if e.source_url),
        key=lambda e: e.occurred_at,
        reverse=True,
    )
    sources = [
        Source(title=f"{e.deal_id}: {e.source_title or e.type}"[:200], url=cast(str, e.source_url))
        for e in events[:3]
    ]
    return Answer(
        command="alert",
        title=f"Alert: {_name(registry, lab)} {spec.metric} is {value} ({format_threshold(spec)})",
        summary=set_by,
        facts=[
            Fact(name="Now", value=value),
            Fact(name="Threshold", value=format_threshold(spec)),
        ],
        sources=sources,
        notes=[f"/explain {lab} shows the deals and sources behind the figure."],
        data={"rule_id": rule.rule_id, "value": trigger.value, **_spec_json(spec)},
    )


@dataclass
class AlertEvaluator:
    """Checks every rule against the log and posts what fired; `run_once` is the interval job."""

    store: AsyncEventStore
    poster: Poster
    registry: PartyRegistry
    clock: Clock
    cooldown: timedelta = DEFAULT_COOLDOWN
    armed: dict[str, bool] = field(default_factory=dict)

    async def run_once(self) -> list[AlertOutcome]:
        queries = Queries(self.store.store)
        try:
            now = self.clock.now()
            snapshot = await self.store.read(read_snapshot, queries, set(self.armed))
            triggers, self.armed = decide(snapshot, self.armed, now, self.cooldown)
        except Exception:  # noqa: BLE001 - a job logs its name and carries on
            log.exception("alert evaluation failed")
            return []
        outcomes = []
        for trigger in triggers:
            try:
                outcomes.append(await self._fire(queries, trigger, now))
            except Exception:  # noqa: BLE001
                log.exception("alert %s failed", trigger.rule.rule_id)
                outcomes.append(AlertOutcome(trigger.rule.rule_id, "failed"))
        return outcomes

    async def _fire(self, queries: Queries, trigger: Trigger, now: datetime) -> AlertOutcome:
        rule_id = trigger.rule.rule_id
        try:
            result = await self.store.append(fired_events(trigger, now))
        except (ConcurrencyError, IdempotencyKeyReuseError):
            # Another evaluator fired it, or the rule changed (removed) since it was read.
            return AlertOutcome(rule_id, "fired_elsewhere")
        if result.all_duplicates:
            return AlertOutcome(rule_id, "fired_elsewhere")
        answer = await self.store.read(fired_answer, queries, self.registry, trigger)
        try:
            message_id = await self.poster.post(trigger.rule.channel_id, answer, None)
        except Exception:  # noqa: BLE001 - recorded as fired: at most once, like the digest
            log.exception(
                "alert %s fired but could not be posted to channel %s",
                rule_id,
                trigger.rule.channel_id,
            )
            return AlertOutcome(rule_id, "failed")
        log.info("alert %s posted to %s", rule_id, trigger.rule.channel_id)
        return AlertOutcome(rule_id, "posted", message_id)


# -- writes (Discord: the member is the actor, the channel is where the alert posts) ----------
async def add_rule(
    store: AsyncEventStore,
    registry: PartyRegistry,
    spec: RuleSpec,
    *,
    channel_id: str,
    actor: str,
    now: datetime,
) -> Answer:
    """Record a rule (AlertRuleAdded); an identical rule in the same channel is refused."""
    queries = Queries(store.store)
    rules = await store.read(load_rules, queries)
    for rule in active_rules(rules):
        if rule.channel_id == channel_id and rule.spec == spec:
            raise UserInputError(
                f"This channel has that alert already ({rule.rule_id}); nothing was written."
            )
    taken = set(rules)
    for _ in range(5):
        rule_id = next_rule_id(spec, taken)
        try:
            await store.append([rule_added_event(spec, rule_id, channel_id, actor, now)])
            break
        except ConcurrencyError:  # someone took the id meanwhile: take the next one
            taken.add(rule_id)
    else:
        raise UserInputError("Could not record the alert (busy); nothing was written, try again.")
    value = await store.read(current_value, queries, spec)
    return rule_added_answer(rule_id, spec, value, registry)


async def remove_rule(
    store: AsyncEventStore, registry: PartyRegistry, rule_id: str, *, actor: str, now: datetime
) -> Answer:
    """Record AlertRuleRemoved for a rule in force; an unknown id gets the ids that exist."""
    rules = await store.read(load_rules, Queries(store.store))
    wanted = rule_id.strip().lower()
    rule = rules.get(wanted)
    if rule is None or rule.removed:
        active = [r.rule_id for r in active_rules(rules)]
        close = [r for r in active if r.startswith(wanted.split("-")[0])] or active
        hint = f" Alerts in force: {', '.join(close[:5])}." if close else " No alert is set."
        raise UserInputError(f"No alert in force has the id {rule_id!r}.{hint}")
    try:
        await store.append([rule_removed_event(rule, actor, now)])
    except ConcurrencyError:
        raise UserInputError(
            f"Alert {rule.rule_id} changed meanwhile; nothing was written, try again."
        ) from None
    return Answer(
        command="alert",
        title=f"Alert {rule.rule_id} removed",
        summary=f"{describe(rule.spec, registry)} no longer posts in <#{rule.channel_id}>.",
        data={"rule_id": rule.rule_id, "removed": True, **_spec_json(rule.spec)},
    )
