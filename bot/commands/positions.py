"""Commands about positions: /position, /compare, /leaderboard, /explain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.answers import Answer, ChartRequest, Fact, Source, Table
from bot.commands.registry import Command, CommandContext, Option
from bot.errors import UserInputError
from bot.formats import count, day, gw, ratio, usd
from store.queries import BUCKETS, DealCounting, EventSource, Overlap, Position

AS_OF = Option("as_of", "valid date YYYY-MM-DD (default: now)", "date")
KNOWN_AT = Option("known_at", "as known on YYYY-MM-DD (default: now)", "date")
METRICS = (
    "committed_gw",
    "operational_gw",
    "contracted_gw",
    "pipeline_gw",
    "rumored_gw",
    "committed_usd",
    "pipeline_usd",
    "backing_usd",
    "deals",
)
EXPLAIN_BUCKETS = (*BUCKETS, "committed_usd", "pipeline_usd", "backing_usd", "chips", "deals")


def _date_json(when: datetime | None) -> str | None:
    return None if when is None else when.date().isoformat()


def position_json(p: Position) -> dict[str, Any]:
    """The public JSON shape of /position (DESIGN.md, "Public contracts")."""
    return {
        "lab": p.lab,
        "as_of": _date_json(p.as_of),
        "known_at": _date_json(p.known_at),
        "capacity_mw": p.capacity_mw.model_dump(),
        "committed_usd": p.committed_usd,
        "pipeline_usd": p.pipeline_usd,
        "backing_usd": p.backing_usd,
        "by_kind": {k: v.model_dump() for k, v in p.by_kind.items()},
        "by_provider": {k: v.model_dump() for k, v in p.by_provider.items()},
        "provider_hhi": None if p.provider_hhi is None else round(p.provider_hhi, 1),
        "chips": [c.model_dump() for c in p.chips],
        "deals": p.deals,
    }


def metric_value(p: Position, metric: str) -> float:
    c = p.capacity_mw
    return {
        "committed_gw": (c.operational + c.contracted) / 1000,
        "operational_gw": c.operational / 1000,
        "contracted_gw": c.contracted / 1000,
        "pipeline_gw": c.pipeline / 1000,
        "rumored_gw": c.rumored / 1000,
        "committed_usd": p.committed_usd,
        "pipeline_usd": p.pipeline_usd,
        "backing_usd": p.backing_usd,
        "deals": float(p.deals),
    }[metric]


def format_metric(metric: str, value: float) -> str:
    if metric.endswith("_gw"):
        return gw(value * 1000)
    if metric.endswith("_usd"):
        return usd(value)
    return count(int(value))


def _when(as_of: datetime | None, known_at: datetime | None) -> str:
    text = f"as of {day(as_of)}"
    return text + (f", as known on {day(known_at)}" if known_at else "")


def _name(ctx: CommandContext, slug: str) -> str:
    return ctx.registry.get(slug).name if slug in ctx.registry else slug


def position(
    ctx: CommandContext, lab: str, as_of: datetime | None = None, known_at: datetime | None = None
) -> Answer:
    p = ctx.queries.position(lab, as_of, known_at)
    c = p.capacity_mw
    facts = [
        Fact(name="Operational", value=gw(c.operational)),
        Fact(name="Contracted", value=gw(c.contracted)),
        Fact(name="Pipeline", value=gw(c.pipeline)),
        Fact(name="Rumored", value=gw(c.rumored)),
        Fact(name="Committed $", value=usd(p.committed_usd)),
        Fact(name="Pipeline $", value=usd(p.pipeline_usd)),
        Fact(name="Backing $", value=usd(p.backing_usd)),
        Fact(name="Deals", value=str(p.deals)),
        Fact(
            name="Provider HHI", value="n/a" if p.provider_hhi is None else f"{p.provider_hhi:,.0f}"
        ),
    ]
    rows = [
        [_name(ctx, slug), gw(t.committed_mw), gw(t.total_mw), str(t.deals)]
        for slug, t in sorted(p.by_provider.items(), key=lambda kv: -kv[1].total_mw)
    ]
    notes = []
    if p.chips:
        notes.append(
            "Chips: "
            + "; ".join(
                f"{count(ch.count) if ch.count else 'count n/a'} {ch.family} "
                f"({_name(ctx, ch.vendor)})"
                for ch in p.chips
            )
        )
    if p.deals == 0:
        notes.append(f"No deal of {_name(ctx, lab)} stands {_when(as_of, known_at)}.")
    return Answer(
        command="position",
        title=f"{_name(ctx, lab)}: compute position"[:256],
        summary=f"{_when(as_of, known_at).capitalize()}. Committed (operational + contracted): "
        f"{gw(c.operational + c.contracted)}; /explain {lab} contracted shows the deals behind it.",
        facts=facts,
        table=Table(
            columns=["Supplier", "Committed", "All buckets", "Deals"],
            rows=rows,
            numeric=[False, True, True, True],
        )
        if rows
        else None,
        notes=notes,
        chart=ChartRequest(
            labs=[lab],
            title=f"{_name(ctx, lab)}: MW by stage",
            as_of=_date_json(as_of),
            known_at=_date_json(known_at),
        ),
        data=position_json(p),
    )


def compare(
    ctx: CommandContext,
    labs: list[str],
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> Answer:
    if len(labs) < 2:
        raise UserInputError("/compare needs at least two labs, e.g. /compare anthropic openai")
    if len(labs) > 6:
        raise UserInputError("/compare takes at most 6 labs")
    positions = ctx.queries.positions(labs, as_of, known_at)
    first = positions[0]
    rows = []
    for metric in METRICS:
        values = [metric_value(p, metric) for p in positions]
        rows.append(
            [
                metric,
                *(format_metric(metric, v) for v in values),
                *(ratio(values[0], v) for v in values[1:]),
            ]
        )
    overlaps = [
        o
        for o in ctx.queries.overlaps(as_of, known_at, labs)
        if o.lab_a in labs and o.lab_b in labs and o.lab_a != o.lab_b and o.overlap_mw > 0
    ]
    notes = [
        f"{gw(o.overlap_mw)} is counted for both {_name(ctx, o.lab_a)} ({o.deal_a}) and "
        f"{_name(ctx, o.lab_b)} ({o.deal_b}): the same capacity."
        for o in overlaps
    ]
    committed_total = sum(metric_value(p, "committed_gw") for p in positions) * 1000
    overlap_mw = shared_mw(overlaps)
    notes.append(
        f"Committed across these labs: {gw(committed_total - overlap_mw)}"
        + (f" (overlaps of {gw(overlap_mw)} counted once)." if overlap_mw else ".")
    )
    columns = ["metric", *labs, *(f"{first.lab}/{p.lab}" for p in positions[1:])]
    return Answer(
        command="compare",
        title=("Compare " + " vs ".join(_name(ctx, lab) for lab in labs))[:256],
        summary=_when(as_of, known_at).capitalize() + ".",
        table=Table(columns=columns, rows=rows, numeric=[False] + [True] * (len(columns) - 1)),
        notes=notes,
        chart=ChartRequest(
            labs=labs, title="MW by stage", as_of=_date_json(as_of), known_at=_date_json(known_at)
        ),
        data={
            "as_of": _date_json(as_of),
            "known_at": _date_json(known_at),
            "labs": [position_json(p) for p in positions],
            "ratios": {
                m: {
                    p.lab: (
                        metric_value(first, m) / metric_value(p, m) if metric_value(p, m) else None
                    )
                    for p in positions[1:]
                }
                for m in METRICS
            },
            "overlaps": [o.model_dump() for o in overlaps],
        },
    )


def leaderboard(
    ctx: CommandContext,
    metric: str = "committed_gw",
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> Answer:
    positions = ctx.queries.positions(None, as_of, known_at)
    ranked = sorted(positions, key=lambda p: (-metric_value(p, metric), p.lab))
    ranked = [p for p in ranked if p.deals > 0]
    rows = [
        [
            str(i),
            _name(ctx, p.lab),
            format_metric(metric, metric_value(p, metric)),
            gw(p.capacity_mw.operational + p.capacity_mw.contracted),
            usd(p.committed_usd),
        ]
        for i, p in enumerate(ranked, 1)
    ]
    overlaps = [
        o for o in ctx.queries.overlaps(as_of, known_at) if o.lab_a != o.lab_b and o.overlap_mw > 0
    ]
    notes = (
        [
            f"{gw(shared_mw(overlaps))} of capacity is counted for two labs "
            f"({len(overlaps)} overlapping deals); totals across labs count it once."
        ]
        if overlaps
        else []
    )
    return Answer(
        command="leaderboard",
        title=f"Leaderboard: {metric}",
        summary=_when(as_of, known_at).capitalize() + ".",
        table=Table(
            columns=["#", "lab", metric, "committed GW", "committed $"],
            rows=rows,
            numeric=[True, False, True, True, True],
        ),
        notes=notes,
        data={
            "metric": metric,
            "as_of": _date_json(as_of),
            "known_at": _date_json(known_at),
            "rows": [{"lab": p.lab, "value": metric_value(p, metric)} for p in ranked],
        },
    )


def shared_mw(overlaps: list[Overlap]) -> float:
    """MW counted twice across labs: a deal overlapping several others shares at most itself."""
    per_deal: dict[str, float] = {}
    for o in overlaps:
        per_deal[o.deal_a] = max(per_deal.get(o.deal_a, 0.0), o.overlap_mw)
    return sum(per_deal.values())


def _contribution(d: DealCounting, bucket: str) -> float:
    if bucket == "chips":
        return float(d.counted_chips or 0) if d.status in ("signed", "operational") else 0.0
    if bucket == "deals":
        return 0.0 if d.excluded else 1.0
    field = f"{bucket}_mw" if bucket in BUCKETS else bucket
    return float(getattr(d, field))


def _why_not(d: DealCounting, bucket: str) -> str | None:
    if d.superseded_by:
        return f"superseded by {d.superseded_by}"
    if d.status in ("shelved", "cancelled"):
        return d.status
    if bucket in BUCKETS and d.capacity_in_parent:
        return f"capacity counted in {d.parent_deal}"
    if bucket.endswith("_usd") and d.value_in_parent:
        return f"value counted in {d.parent_deal}"
    return None


def explain(
    ctx: CommandContext,
    lab: str,
    bucket: str,
    as_of: datetime | None = None,
    known_at: datetime | None = None,
) -> Answer:
    deals = ctx.queries.counting([lab], as_of, known_at)
    counted = sorted(
        (d for d in deals if _contribution(d, bucket)), key=lambda d: -_contribution(d, bucket)
    )
    left_out = [
        (d, why) for d in deals if (why := _why_not(d, bucket)) and not _contribution(d, bucket)
    ]
    fmt = (
        (lambda v: gw(v))
        if bucket in BUCKETS
        else ((lambda v: usd(v)) if bucket.endswith("_usd") else (lambda v: count(int(v))))
    )
    total = sum(_contribution(d, bucket) for d in counted)
    rows = [[d.deal_id, d.status, fmt(_contribution(d, bucket)), str(d.sources)] for d in counted]
    events_by_deal: dict[str, list[EventSource]] = {}
    sources_by_deal: dict[str, list[Source]] = {}
    # One query for the events behind every counted deal: the text and the JSON share it.
    for s in ctx.queries.sources([d.deal_id for d in counted], as_of, known_at):
        events_by_deal.setdefault(s.deal_id, []).append(s)
        if s.source_url:
            sources_by_deal.setdefault(s.deal_id, []).append(
                Source(
                    title=f"{s.deal_id}: {s.type} {s.occurred_at:%Y-%m-%d}"
                    + (f" ({s.source_title})" if s.source_title else ""),
                    url=s.source_url,
                )
            )
    sources = [src for d in counted for src in sources_by_deal.get(d.deal_id, [])]
    notes = [f"Left out: {d.deal_id} ({why})" for d, why in left_out]
    return Answer(
        command="explain",
        title=f"{_name(ctx, lab)}: {bucket} = {fmt(total)}"[:256],
        summary=f"{_when(as_of, known_at).capitalize()}. {len(counted)} deal(s) add up to this "
        "figure; each row's events and sources follow.",
        table=Table(
            columns=["deal", "status", bucket, "sources"],
            rows=rows,
            numeric=[False, False, True, True],
        ),
        sources=sources,
        notes=notes,
        data={
            "lab": lab,
            "bucket": bucket,
            "total": total,
            "as_of": _date_json(as_of),
            "known_at": _date_json(known_at),
            "deals": [
                {
                    "deal_id": d.deal_id,
                    "status": d.status,
                    "contribution": _contribution(d, bucket),
                    "events": [
                        s.model_dump(mode="json") for s in events_by_deal.get(d.deal_id, [])
                    ],
                }
                for d in counted
            ],
            "left_out": [{"deal_id": d.deal_id, "reason": why} for d, why in left_out],
        },
    )


COMMANDS = (
    Command(
        "position",
        "A lab's compute: GW by stage, dollars, suppliers, chips",
        (Option("lab", "the lab, e.g. anthropic", "lab", required=True), AS_OF, KNOWN_AT),
        position,
        examples=("/position anthropic", "/position openai as_of:2025-12-31"),
    ),
    Command(
        "compare",
        "Labs side by side with ratios",
        (Option("labs", "two to six labs", "labs", required=True), AS_OF, KNOWN_AT),
        compare,
        examples=("/compare anthropic openai",),
    ),
    Command(
        "leaderboard",
        "Labs ranked by a metric",
        (
            Option("metric", "what to rank by", "choice", choices=METRICS, default="committed_gw"),
            AS_OF,
            KNOWN_AT,
        ),
        leaderboard,
        examples=("/leaderboard", "/leaderboard committed_usd"),
    ),
    Command(
        "explain",
        "The deals and sources behind one figure of a lab",
        (
            Option("lab", "the lab", "lab", required=True),
            Option(
                "bucket", "the figure to explain", "choice", required=True, choices=EXPLAIN_BUCKETS
            ),
            AS_OF,
            KNOWN_AT,
        ),
        explain,
        examples=("/explain anthropic contracted",),
    ),
)
