"""The weekly digest: what was recorded in an ISO week, as a pure function of (store, week).

Time basis. A week is an ISO week in UTC, [Monday 00:00, next Monday 00:00). "News" is what was
*recorded* during the week (known time, recorded_at): that is what readers perceive as new, and
it includes a late report of something that happened earlier. Every read uses known_at = the
week's last instant, so the digest of a past week is the same whenever it is generated.

Figures: the leaderboard compares each lab's committed MW (operational + contracted) at the end
of the week with what last week's digest said (as_of and known_at = last week's end). A
restatement is the part of that change that concerns last week itself: the position as_of last
week's end, known now (end of this week) against known then, explained by the retractions and
late reports recorded this week.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.answers import Answer, ChartRequest, Fact, Source, Table
from bot.commands.registry import CommandContext
from bot.errors import UserInputError
from bot.formats import gw, signed_gw, usd
from events.parties import PartyRegistry
from store.digest_queries import (
    WeekEvent,
    WeekRetraction,
    pending_candidates,
    week_events,
    week_retractions,
)
from store.queries import Position, Queries

WEEK_PATTERN = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.IGNORECASE)
ONE_MICROSECOND = timedelta(microseconds=1)
CHART_LABS = 3
CHART_MONTHS = 12

# Discord's embed limits (https://discord.com/developers/docs/resources/message#embed-limits).
MAX_TITLE = 256
MAX_FACTS = 25
MAX_FIELD_VALUE = 1024
MAX_TOTAL_TEXT = 6000
MAX_ITEMS_PER_SECTION = 8
MAX_LEADERBOARD_ROWS = 10
MAX_SOURCES = 20


# -- weeks ------------------------------------------------------------------------------------
def parse_week(text: str) -> str:
    """An ISO week written 2026-W05 (or 2026W5), normalised to 2026-W05."""
    match = WEEK_PATTERN.match(text.strip())
    if not match:
        raise UserInputError(f"week: {text!r} is not an ISO week; write it as 2026-W05")
    year, number = int(match[1]), int(match[2])
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise UserInputError(f"week: {year} has no ISO week {number}") from None
    return f"{year:04d}-W{number:02d}"


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """First and last instant (UTC) of an ISO week: Monday 00:00 and Sunday 23:59:59.999999."""
    year, number = int(week[:4]), int(week[6:])
    start = datetime.combine(date.fromisocalendar(year, number, 1), datetime.min.time(), tzinfo=UTC)
    return start, start + timedelta(days=7) - ONE_MICROSECOND


def week_of(when: datetime) -> str:
    year, number, _ = when.astimezone(UTC).isocalendar()
    return f"{year:04d}-W{number:02d}"


def last_complete_week(now: datetime) -> str:
    """The ISO week that ended most recently before `now` (a Monday run covers the week before)."""
    return week_of(now.astimezone(UTC) - timedelta(days=7))


def check_week_is_over(week: str, now: datetime) -> None:
    _, end = week_bounds(week)
    if end > now:
        raise UserInputError(
            f"week: {week} is not over yet (it ends {end:%Y-%m-%d} 24:00 UTC); "
            f"the last complete week is {last_complete_week(now)}"
        )


# -- the digest model -------------------------------------------------------------------------
class DigestItem(BaseModel):
    """One line of news, with the source it rests on."""

    model_config = ConfigDict(frozen=True)
    deal_id: str
    lab: str | None
    text: str
    occurred_at: datetime
    recorded_at: datetime
    source_url: str | None
    source_title: str | None


class LeaderRow(BaseModel):
    """A lab's committed MW at the end of the week and what last week's digest said."""

    model_config = ConfigDict(frozen=True)
    rank: int
    lab: str
    committed_mw: float
    previous_mw: float
    change_mw: float
    pipeline_mw: float
    committed_usd: float


class Restatement(BaseModel):
    """Last week's committed MW of a lab, known now vs known then, and why it changed."""

    model_config = ConfigDict(frozen=True)
    lab: str
    was_mw: float
    now_mw: float
    reasons: list[str]
    sources: list[tuple[str, str]]


class Digest(BaseModel):
    """The digest of one ISO week, as known at the week's end."""

    model_config = ConfigDict(frozen=True)
    week: str
    start: datetime
    end: datetime
    new_deals: list[DigestItem]
    status_changes: list[DigestItem]
    capacity_online: list[DigestItem]
    restatements: list[Restatement]
    leaderboard: list[LeaderRow]
    mover: str | None
    headline: str
    pending_candidates: int
    quiet: bool


# -- building ---------------------------------------------------------------------------------
def committed_mw(p: Position) -> float:
    return p.capacity_mw.operational + p.capacity_mw.contracted


def _name_fn(registry: PartyRegistry | None) -> Callable[[str | None], str]:
    def name(slug: str | None) -> str:
        if slug is None:
            return "?"
        if registry is not None and slug in registry:
            return registry.get(slug).name
        return slug

    return name


def _item(e: WeekEvent, text: str) -> DigestItem:
    return DigestItem(
        deal_id=e.deal_id,
        lab=e.lab,
        text=text,
        occurred_at=e.occurred_at,
        recorded_at=e.recorded_at,
        source_url=e.source_url,
        source_title=e.source_title,
    )


def _late(e: WeekEvent, start: datetime) -> str:
    return f" (dated {e.occurred_at:%Y-%m-%d})" if e.occurred_at < start else ""


def build_digest(queries: Queries, week: str, registry: PartyRegistry | None = None) -> Digest:
    """The digest of `week`, reading only what was recorded by the week's end (reproducible)."""
    name = _name_fn(registry)
    start, end = week_bounds(week)
    prev_end = start - ONE_MICROSECOND
    events = week_events(queries.store, start, end)
    retractions = week_retractions(queries.store, start, end)

    new_deals, changes, online = [], [], []
    for e in events:
        title = e.deal_title or e.deal_id
        if e.type == "DealReported":
            size = ", ".join(
                x
                for x in (
                    gw(e.capacity_mw) if e.capacity_mw else "",
                    usd(e.value_usd) if e.value_usd else "",
                )
                if x
            )
            new_deals.append(
                _item(
                    e,
                    f"{name(e.lab)}: {title} — {e.status}"
                    + (f", {size}" if size else "")
                    + _late(e, start),
                )
            )
        elif e.type == "DealStatusChanged":
            arrow = f"{e.previous_status} → {e.status}" if e.previous_status else f"→ {e.status}"
            why = f" ({e.reason})" if e.reason else ""
            changes.append(_item(e, f"{name(e.lab)}: {title} {arrow}{why}" + _late(e, start)))
        elif e.type == "DealTermsRevised":
            terms = ", ".join(
                x
                for x in (
                    gw(e.capacity_mw) if e.capacity_mw else "",
                    usd(e.value_usd) if e.value_usd else "",
                )
                if x
            )
            changes.append(
                _item(
                    e,
                    f"{name(e.lab)}: {title} terms revised"
                    + (f" to {terms}" if terms else "")
                    + _late(e, start),
                )
            )
        elif e.type == "CapacityCameOnline":
            mw = gw(e.online_mw) if e.online_mw else "capacity"
            online.append(_item(e, f"{name(e.lab)}: {mw} online at {title}" + _late(e, start)))

    now = {p.lab: p for p in queries.positions(None, as_of=end, known_at=end)}
    then = {p.lab: p for p in queries.positions(None, as_of=prev_end, known_at=prev_end)}
    restated = {p.lab: p for p in queries.positions(None, as_of=prev_end, known_at=end)}

    restatements = _restatements(then, restated, events, retractions, start, name)
    leaderboard = _leaderboard(now, then)
    mover = max(leaderboard, key=lambda r: (abs(r.change_mw), -r.rank), default=None)
    if mover is not None and mover.change_mw == 0:
        mover = None
    quiet = not (new_deals or changes or online or restatements or retractions)
    if mover is not None:
        headline = (
            f"{name(mover.lab)} moved most: {signed_gw(mover.change_mw)} committed, "
            f"now {gw(mover.committed_mw)}"
        )
    elif quiet:
        headline = "A quiet week: nothing new was recorded"
    else:
        headline = f"{len(new_deals)} new deal(s), no change in committed capacity"
    return Digest(
        week=week,
        start=start,
        end=end,
        new_deals=new_deals,
        status_changes=changes,
        capacity_online=online,
        restatements=restatements,
        leaderboard=leaderboard,
        mover=mover.lab if mover else None,
        headline=headline,
        pending_candidates=pending_candidates(queries.store, end),
        quiet=quiet,
    )


def _leaderboard(now: dict[str, Position], then: dict[str, Position]) -> list[LeaderRow]:
    labs = [
        lab
        for lab in set(now) | set(then)
        if (lab in now and now[lab].deals) or (lab in then and then[lab].deals)
    ]
    ordered = sorted(labs, key=lambda lab: (-committed_mw(now[lab]) if lab in now else 0.0, lab))
    rows = []
    for rank, lab in enumerate(ordered, 1):
        current = committed_mw(now[lab]) if lab in now else 0.0
        before = committed_mw(then[lab]) if lab in then else 0.0
        p = now.get(lab)
        rows.append(
            LeaderRow(
                rank=rank,
                lab=lab,
                committed_mw=current,
                previous_mw=before,
                change_mw=current - before,
                pipeline_mw=p.capacity_mw.pipeline if p else 0.0,
                committed_usd=p.committed_usd if p else 0.0,
            )
        )
    return rows


def _restatements(
    then: dict[str, Position],
    restated: dict[str, Position],
    events: list[WeekEvent],
    retractions: list[WeekRetraction],
    start: datetime,
    name: Callable[[str | None], str],
) -> list[Restatement]:
    out = []
    for lab in sorted(set(then) | set(restated)):
        was = committed_mw(then[lab]) if lab in then else 0.0
        now = committed_mw(restated[lab]) if lab in restated else 0.0
        if abs(now - was) < 1e-9:
            continue
        reasons: list[str] = []
        sources: list[tuple[str, str]] = []
        for r in retractions:
            if r.lab == lab:
                reasons.append(
                    f"{r.deal_id}: {r.type} of {r.occurred_at:%Y-%m-%d} retracted"
                    + (f" ({r.reason})" if r.reason else "")
                )
                if r.source_url:
                    sources.append((f"{r.deal_id}: retraction", r.source_url))
        for e in events:
            if e.lab == lab and e.occurred_at < start:
                reasons.append(
                    f"{e.deal_id}: {e.type} dated {e.occurred_at:%Y-%m-%d} reported late"
                )
                if e.source_url:
                    sources.append((f"{e.deal_id}: {e.source_title or e.type}", e.source_url))
        out.append(
            Restatement(
                lab=lab,
                was_mw=was,
                now_mw=now,
                reasons=reasons or ["revised figures recorded this week"],
                sources=sources,
            )
        )
    return out


# -- rendering --------------------------------------------------------------------------------
def _lines(items: list[str], refs: list[str]) -> str:
    """Lines with their source references, cut to fit one embed field (1024 characters)."""
    out: list[str] = []
    shown = 0
    for text, ref in zip(items, refs, strict=True):
        line = f"• {text}{ref}"
        if shown >= MAX_ITEMS_PER_SECTION or len("\n".join([*out, line])) > MAX_FIELD_VALUE - 30:
            break
        out.append(line[:300])
        shown += 1
    if shown < len(items):
        out.append(f"…and {len(items) - shown} more")
    return "\n".join(out)


def digest_answer(digest: Digest, registry: PartyRegistry | None = None) -> Answer:
    """The digest as an Answer that fits one Discord embed (title, 25 fields, 6000 characters)."""
    name = _name_fn(registry)
    sources: list[Source] = []
    by_url: dict[str, int] = {}

    def ref(title: str, url: str | None) -> str:
        if not url:
            return ""
        if url not in by_url:
            if len(sources) >= MAX_SOURCES:
                return ""
            sources.append(Source(title=title[:200], url=url))
            by_url[url] = len(sources)
        return f" [{by_url[url]}]"

    facts: list[Fact] = []
    for label, items in (
        ("New deals", digest.new_deals),
        ("Status changes", digest.status_changes),
        ("Capacity online", digest.capacity_online),
    ):
        if items:
            refs = [ref(f"{i.deal_id}: {i.source_title or i.text}", i.source_url) for i in items]
            facts.append(
                Fact(
                    name=f"{label} ({len(items)})",
                    value=_lines([i.text for i in items], refs),
                    inline=False,
                )
            )
    if digest.restatements:
        texts, refs = [], []
        for r in digest.restatements:
            texts.append(
                f"{name(r.lab)} last week: {gw(r.was_mw)} → {gw(r.now_mw)} ({'; '.join(r.reasons)})"
            )
            refs.append("".join(ref(t, u) for t, u in r.sources[:3]))
        facts.append(
            Fact(name=f"Restatements ({len(texts)})", value=_lines(texts, refs), inline=False)
        )
    facts.append(Fact(name="Candidates waiting for review", value=str(digest.pending_candidates)))
    rows = [
        [str(r.rank), name(r.lab), gw(r.committed_mw), signed_gw(r.change_mw), gw(r.pipeline_mw)]
        for r in digest.leaderboard[:MAX_LEADERBOARD_ROWS]
    ]
    notes = []
    if digest.quiet:
        notes.append("A quiet week: no deal, status change or capacity was recorded.")
    notes.append(
        f"Figures as known at the end of {digest.week} (UTC); "
        "/explain <lab> contracted shows the deals and sources behind each figure."
    )
    start_day = digest.start.date().isoformat()
    end_day = digest.end.date().isoformat()
    answer = Answer(
        command="digest",
        title=f"Weekly digest {digest.week}: {digest.headline}"[:MAX_TITLE],
        summary=f"{start_day} to {end_day}. {digest.headline}.",
        facts=facts[:MAX_FACTS],
        table=Table(
            columns=["#", "lab", "committed", "change", "pipeline"],
            rows=rows,
            numeric=[True, False, True, True, True],
        ),
        sources=sources,
        notes=notes,
        chart=ChartRequest(
            labs=leading_labs(digest),
            title=f"Leading labs to {digest.week}",
            as_of=end_day,
            known_at=end_day,
        )
        if leading_labs(digest)
        else None,
        data=digest_json(digest),
    )
    return fit_to_discord(answer)


def answer_text_size(answer: Answer) -> int:
    """Characters an embed of this answer shows: title, summary, facts, table, notes, sources."""
    size = len(answer.title) + len(answer.summary or "")
    size += sum(len(f.name) + len(f.value) for f in answer.facts)
    if answer.table:
        size += sum(len(c) for c in answer.table.columns)
        size += sum(len(cell) + 1 for row in answer.table.rows for cell in row)
    size += sum(len(n) for n in answer.notes)
    size += sum(len(s.title) + len(s.url) + 6 for s in answer.sources)
    return size


def fit_to_discord(answer: Answer) -> Answer:
    """Drop sources, then shorten fields, until the answer fits Discord's 6000 characters."""
    while answer_text_size(answer) > MAX_TOTAL_TEXT and answer.sources:
        answer = answer.model_copy(update={"sources": answer.sources[:-1]})
    while answer_text_size(answer) > MAX_TOTAL_TEXT:
        longest = max(range(len(answer.facts)), key=lambda i: len(answer.facts[i].value))
        fact = answer.facts[longest]
        if len(fact.value) <= 40:
            break
        facts = list(answer.facts)
        facts[longest] = fact.model_copy(update={"value": fact.value[: len(fact.value) // 2] + "…"})
        answer = answer.model_copy(update={"facts": facts})
    return answer


def digest_json(digest: Digest) -> dict[str, Any]:
    return digest.model_dump(mode="json")


def leading_labs(digest: Digest, n: int = CHART_LABS) -> list[str]:
    return [r.lab for r in digest.leaderboard if r.committed_mw > 0][:n]


def digest_chart_png(queries: Queries, digest: Digest) -> bytes | None:
    """The leading labs' positions month by month over the last 12 months, known at week's end."""
    # matplotlib loads only when a chart is drawn: it would add ~0.2 s to every start of the bot.
    from bot.charts import collect_series, month_ends, render_positions_chart

    labs = leading_labs(digest)
    if not labs:
        return None
    first_day = (digest.end - timedelta(days=365)).date()
    dates = month_ends(first_day, digest.end.date())
    series = collect_series(
        lambda wanted, when: queries.positions(
            wanted, as_of=min(when, digest.end), known_at=digest.end
        ),
        labs,
        [min(d, digest.end) for d in dates],
    )
    return render_positions_chart(
        series,
        title=f"Leading labs, 12 months to {digest.week}",
        known_at_label=f"as known at the end of {digest.week}",
    )


def digest_command(ctx: CommandContext, week: str | None = None) -> Answer:
    """/digest [week]: the preview of a week's digest (default: the last complete week)."""
    now = ctx.clock.now()
    chosen = parse_week(week) if week else last_complete_week(now)
    check_week_is_over(chosen, now)
    return digest_answer(build_digest(ctx.queries, chosen, ctx.registry), ctx.registry)
