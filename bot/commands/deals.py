"""Commands about deals and the data: /deals, /deal, /labs, /coverage."""

from __future__ import annotations

from datetime import datetime

from bot.answers import Answer, Fact, Source, Table
from bot.commands.registry import Command, CommandContext, Option
from bot.errors import UserInputError
from bot.formats import gw, usd
from events.vocabulary import DealKind, DealStatus

PAGE_SIZE = 10
STATUSES = tuple(s.value for s in DealStatus)
KINDS = tuple(k.value for k in DealKind)


def resolve_deal_id(ctx: CommandContext, text: str) -> str:
    """A deal id from its full id, or a unique part of it; suggestions otherwise."""
    text = text.strip().lower().removeprefix("deal:")
    if not (text.isascii() and text.isprintable()):
        # Deal ids are ASCII letters, digits, - and _: nothing else can be part of one.
        raise UserInputError(f"No deal is called {text!r}. /deals lists them.")
    if ctx.queries.store.lab_of(text) is not None:
        return text
    hits, total = ctx.queries.deal_ids_containing(text, limit=5)
    if total == 1:
        return hits[0]
    if hits:
        raise UserInputError(f"{text!r} matches {total} deals: {', '.join(hits)}…")
    raise UserInputError(f"No deal is called {text!r}. /deals lists them.")


def deals(
    ctx: CommandContext,
    lab: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    page: int = 1,
) -> Answer:
    rows = ctx.queries.counting([lab] if lab else None)
    rows = [
        d
        for d in rows
        if (status is None or d.status == status)
        and (kind is None or d.kind == kind)
        and (since is None or d.last_event_at.date() >= since.date())
    ]
    rows.sort(key=lambda d: (d.last_event_at, d.deal_id), reverse=True)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    if page > pages:
        raise UserInputError(f"page {page} is past the last page ({pages})")
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    filters = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("lab", lab),
            ("status", status),
            ("kind", kind),
            ("since", since.date() if since else None),
        )
        if v
    )
    return Answer(
        command="deals",
        title=f"Deals ({len(rows)})" + (f": {filters}" if filters else ""),
        table=Table(
            columns=["deal", "lab", "kind", "status", "capacity", "value", "updated"],
            rows=[
                [
                    d.deal_id,
                    d.lab,
                    d.kind,
                    d.status,
                    gw(d.capacity_mw) if d.capacity_mw else "—",
                    usd(d.value_usd) if d.value_usd else "—",
                    f"{d.last_event_at:%Y-%m-%d}",
                ]
                for d in shown
            ],
            numeric=[False, False, False, False, True, True, False],
        ),
        page=page,
        pages=pages,
        notes=[f"Page {page} of {pages}; /deal <id> shows a deal's timeline."],
        data={
            "total": len(rows),
            "page": page,
            "pages": pages,
            "deals": [
                d.model_dump(
                    mode="json",
                    include={
                        "deal_id",
                        "lab",
                        "kind",
                        "status",
                        "title",
                        "capacity_mw",
                        "value_usd",
                        "first_reported_at",
                        "last_event_at",
                        "sources",
                        "excluded",
                    },
                )
                for d in shown
            ],
        },
    )


def deal(ctx: CommandContext, id: str) -> Answer:  # noqa: A002 - the option users type is "id"
    deal_id = resolve_deal_id(ctx, id)
    lab = ctx.queries.store.lab_of(deal_id)
    # Only the deal's lab is counted: its links (part_of, supersedes) stay within that lab.
    state = next(
        (d for d in ctx.queries.counting([lab] if lab else None) if d.deal_id == deal_id), None
    )
    timeline = ctx.queries.timeline(deal_id)
    rows, sources = [], []
    for entry in timeline:
        e = entry.event
        what = e.type + (
            " (retracted: " + (entry.retraction_reason or "") + ")" if entry.retracted_at else ""
        )
        detail = _describe_payload(e.payload.model_dump(mode="json", exclude_none=True))
        rows.append([f"{e.occurred_at:%Y-%m-%d}", what, detail[:120], e.actor])
        if e.source_url:
            sources.append(
                Source(
                    title=f"{e.occurred_at:%Y-%m-%d} {e.type}"
                    + (f": {e.source_title}" if e.source_title else ""),
                    url=e.source_url,
                )
            )
    facts = []
    if state:
        facts = [
            Fact(name="Lab", value=state.lab),
            Fact(name="Kind", value=state.kind),
            Fact(name="Status", value=state.status),
            Fact(name="Capacity", value=gw(state.capacity_mw) if state.capacity_mw else "—"),
            Fact(name="Value", value=usd(state.value_usd) if state.value_usd else "—"),
            Fact(
                name="Counterparties",
                value=", ".join(f"{c['party']} ({c['role']})" for c in state.counterparties) or "—",
                inline=False,
            ),
        ]
    notes = []
    if state and state.excluded:
        notes.append(
            "This deal does not count in positions: "
            + (f"superseded by {state.superseded_by}" if state.superseded_by else state.status)
            + "."
        )
    elif state and state.capacity_in_parent:
        notes.append(f"Its capacity is counted inside {state.parent_deal}.")
    return Answer(
        command="deal",
        title=(state.title if state and state.title else deal_id)[:256],
        summary=f"deal:{deal_id}, {len(timeline)} events",
        facts=facts,
        table=Table(columns=["date", "event", "detail", "actor"], rows=rows),
        sources=sources,
        notes=notes,
        data={
            "deal_id": deal_id,
            "state": state.model_dump(mode="json") if state else None,
            "events": [
                {
                    **t.event.to_json_dict(),
                    "retracted_at": t.retracted_at.isoformat() if t.retracted_at else None,
                    "retraction_reason": t.retraction_reason,
                }
                for t in timeline
            ],
        },
    )


def _describe_payload(payload: dict[str, object]) -> str:
    skip = {"summary", "date_precision", "title"}
    return ", ".join(f"{k}={v}" for k, v in payload.items() if k not in skip and v not in ((), []))


def labs(ctx: CommandContext) -> Answer:
    positions = {p.lab: p for p in ctx.queries.positions()}
    rows = []
    for slug, p in sorted(positions.items(), key=lambda kv: -kv[1].deals):
        party = ctx.registry.get(slug) if slug in ctx.registry else None
        aliases = ", ".join(party.aliases[:3]) if party else ""
        rows.append(
            [
                slug,
                party.name if party else slug,
                str(p.deals),
                gw(p.capacity_mw.operational + p.capacity_mw.contracted),
                aliases,
            ]
        )
    return Answer(
        command="labs",
        title=f"Labs with deals ({len(rows)})",
        table=Table(
            columns=["lab", "name", "deals", "committed", "also known as"],
            rows=rows,
            numeric=[False, False, True, True, False],
        ),
        notes=["Any name or alias works in commands: /position 'Claude maker'."],
        data={"labs": [{"lab": r[0], "name": r[1], "deals": int(r[2])} for r in rows]},
    )


def coverage(ctx: CommandContext) -> Answer:
    rows = ctx.queries.coverage()
    total = sum(r.deals for r in rows)
    multi = sum(r.multi_source for r in rows)
    soft = sum(r.rumored_or_loi for r in rows)

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:.0f}%" if b else "—"

    return Answer(
        command="coverage",
        title="Coverage: how far the numbers can be trusted",
        summary=f"{total} deals count today; {pct(multi, total)} have two or more sources, "
        f"{pct(soft, total)} are only rumoured or a letter of intent.",
        table=Table(
            columns=["lab", "deals", "2+ sources", "rumoured/LOI only", "unconfirmed"],
            rows=[
                [
                    r.lab,
                    str(r.deals),
                    pct(r.multi_source, r.deals),
                    pct(r.rumored_or_loi, r.deals),
                    pct(r.unconfirmed, r.deals),
                ]
                for r in rows
            ],
            numeric=[False, True, True, True, True],
        ),
        data={
            "deals": total,
            "multi_source_share": multi / total if total else None,
            "rumored_or_loi_share": soft / total if total else None,
            "labs": [r.model_dump() for r in rows],
        },
    )


COMMANDS = (
    Command(
        "deals",
        "List deals, newest first, with filters",
        (
            Option("lab", "only this lab", "lab"),
            Option("status", "only this status", "choice", choices=STATUSES),
            Option("kind", "only this kind", "choice", choices=KINDS),
            Option("since", "changed on or after YYYY-MM-DD", "date"),
            Option("page", "page number", "int", default=1),
        ),
        deals,
        examples=("/deals anthropic", "/deals status:loi"),
    ),
    Command(
        "deal",
        "One deal's timeline with its sources",
        (Option("id", "the deal id (or a unique part of it)", "deal", required=True),),
        deal,
        examples=("/deal anthropic-spacex-colossus1-2026",),
    ),
    Command("labs", "The labs we follow and their aliases", (), labs),
    Command(
        "coverage",
        "How many deals have 2+ sources, how many are only rumoured or LOI",
        (),
        coverage,
    ),
)
