"""/review: the feed candidates that wait for an analyst's decision (a private, paged list)."""

from __future__ import annotations

from bot.answers import Answer, Table
from bot.commands.registry import Command, CommandContext, Option
from bot.errors import UserInputError
from bot.formats import gw, usd
from bot.review import ACTIONS, pending_candidates

PAGE_SIZE = 10


def review(ctx: CommandContext, page: int = 1) -> Answer:
    pending = pending_candidates(ctx.queries.store)
    pages = max(1, -(-len(pending) // PAGE_SIZE))
    if page > pages:
        raise UserInputError(f"page {page} is past the last page ({pages})")
    shown = pending[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    rows = []
    for c in shown:
        deal = c.payload.deal
        target = c.payload.matched_deal if c.payload.action != "new_deal" else None
        rows.append(
            [
                c.short_id,
                deal.lab,
                deal.kind.value,
                deal.status.value,
                gw(deal.capacity_mw) if deal.capacity_mw else "—",
                usd(deal.value_usd) if deal.value_usd else "—",
                ACTIONS[c.payload.action].removeprefix("a ").removeprefix("an ")
                + (f" {target}" if target else ""),
                f"{c.proposed.recorded_at:%Y-%m-%d}",
            ]
        )
    notes = [
        "Accept or reject each in the review channel, or in the console: "
        "/review accept <candidate> | /review reject <candidate> <reason>."
    ]
    if pages > 1:
        notes.insert(0, f"Page {page} of {pages}.")
    return Answer(
        command="review",
        title=f"Candidates waiting for review ({len(pending)})",
        summary=None if pending else "Nothing waits for review.",
        table=Table(
            columns=["candidate", "lab", "kind", "status", "capacity", "value", "makes", "found"],
            rows=rows,
            numeric=[False, False, False, False, True, True, False, False],
        )
        if rows
        else None,
        notes=notes,
        sources=[],
        page=page,
        pages=pages,
        data={
            "total": len(pending),
            "page": page,
            "pages": pages,
            "candidates": [
                {
                    "candidate": c.stream_id,
                    "article_url": c.payload.article_url,
                    "action": c.payload.action,
                    "matched_deal": c.payload.matched_deal,
                    "proposed_at": c.proposed.recorded_at.isoformat(),
                    "deal": c.payload.deal.model_dump(mode="json"),
                }
                for c in shown
            ],
        },
        ephemeral=True,
    )


COMMANDS = (
    Command(
        "review",
        "Feed candidates waiting for an analyst's decision (only you see the list)",
        (Option("page", "page number", "int", default=1),),
        review,
        examples=("/review", "/review page:2"),
    ),
)
