"""Charts for answers: the position series behind a ChartRequest, drawn as a PNG."""

from __future__ import annotations

from datetime import UTC

from bot.answers import ChartRequest
from bot.charts import collect_series, month_ends, render_positions_chart
from bot.commands.options import parse_moment
from bot.commands.registry import CommandContext


def chart_png(ctx: CommandContext, request: ChartRequest) -> bytes:
    """Positions of the requested labs month by month up to as_of, stacked by bucket."""
    known_at = parse_moment(request.known_at, option="known_at")
    end = parse_moment(request.as_of, option="as_of") or ctx.clock.now()
    first = ctx.queries.first_event_at() or end
    start = max(first, end.replace(year=end.year - 3)).astimezone(UTC)
    dates = month_ends(start.date(), end.date())
    series = collect_series(
        lambda labs, when: ctx.queries.positions(labs, as_of=when, known_at=known_at),
        request.labs,
        dates,
    )
    label = f"as known on {known_at:%Y-%m-%d}" if known_at else None
    return render_positions_chart(series, title=request.title, known_at_label=label)
