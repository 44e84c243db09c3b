"""Render an Answer as Discord embeds, one page at a time, always within Discord's limits (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.answers import Answer, Table

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
EMBEDS_PER_MESSAGE = 10

# Our own budgets, well inside the limits, so that a page stays readable on a phone.
SUMMARY_MAX = 1000
TABLE_BUDGET = 1900  # characters of the code block on one page
ROWS_PER_PAGE = 15
CELL_MAX = 32
LINE_MAX = 110
FACTS_MAX = 21  # leaves room for the notes and sources fields
CHART_URL = "attachment://chart.png"
COLOUR = discord.Colour.from_rgb(46, 134, 222)


@dataclass(frozen=True)
class RenderedPage:
    """The embeds of one message showing page `page` (1-based) of `pages`."""

    embeds: list[discord.Embed]
    page: int
    pages: int


def cut(text: str, limit: int) -> str:
    """The text itself if it fits, else its start and an ellipsis, `limit` characters in all."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…" if limit > 0 else ""


def embed_size(embed: discord.Embed) -> int:
    """Characters that count toward Discord's 6000 per message: title, description, fields,
    footer and author name."""
    size = len(embed.title or "") + len(embed.description or "")
    size += sum(len(f.name or "") + len(f.value or "") for f in embed.fields)
    size += len(embed.footer.text or "") + len(embed.author.name or "")
    return size


def table_pages(table: Table | None) -> list[str]:
    """The table as monospaced code blocks, split by rows into pages that fit TABLE_BUDGET."""
    if table is None or not table.columns:
        return [""]
    if not table.rows:
        return ["*(no rows)*"]
    width = len(table.columns)
    numeric = list(table.numeric) + [False] * (width - len(table.numeric))
    cells = [[_cell(c) for c in table.columns]] + [
        [_cell(r[i]) if i < len(r) else "" for i in range(width)] for r in table.rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(width)]

    def line(row: list[str]) -> str:
        parts = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return cut("  ".join(parts).rstrip(), LINE_MAX)

    header = line(cells[0])
    rule = cut("-" * len(header), LINE_MAX)
    pages: list[str] = []
    current: list[str] = []
    for row in cells[1:]:
        text = line(row)
        candidate = _block(header, rule, [*current, text])
        if current and (len(current) >= ROWS_PER_PAGE or len(candidate) > TABLE_BUDGET):
            pages.append(_block(header, rule, current))
            current = []
        current.append(text)
    pages.append(_block(header, rule, current))
    return pages


def page_count(answer: Answer) -> int:
    """How many pages render_answer gives for this answer (at least 1)."""
    return len(table_pages(answer.table))


def render_answer(answer: Answer, *, page: int = 1, chart: bool = False) -> RenderedPage:
    """Page `page` of the answer: facts on the first page, notes and sources on the last, the
    chart (an attachment named chart.png) on the first; every limit of Discord holds."""
    chunks = table_pages(answer.table)
    pages = len(chunks)
    page = min(max(page, 1), pages)
    embed = discord.Embed(title=cut(answer.title or answer.command, TITLE_MAX), colour=COLOUR)
    parts = [cut(answer.summary, SUMMARY_MAX)] if answer.summary else []
    if chunks[page - 1]:
        parts.append(chunks[page - 1])
    embed.description = cut("\n".join(parts), DESCRIPTION_MAX) or None
    footer = _footer(answer, page, pages)
    embed.set_footer(text=cut(footer, FOOTER_MAX))
    budget = EMBED_TOTAL_MAX - embed_size(embed)

    def add_field(name: str, value: str, inline: bool) -> None:
        nonlocal budget
        name = cut(name or "\u200b", FIELD_NAME_MAX)
        value = cut(value or "\u200b", min(FIELD_VALUE_MAX, budget - len(name)))
        if (
            len(embed.fields) < FIELDS_MAX
            and len(name)
            and len(value)
            and (len(name) + len(value) <= budget)
        ):
            embed.add_field(name=name, value=value, inline=inline)
            budget -= len(name) + len(value)

    # Reserve room for notes and sources so that a long list of facts cannot crowd them out.
    reserve = (200 if answer.notes else 0) + (200 if answer.sources else 0)
    if page == 1:
        budget -= reserve
        for fact in answer.facts[:FACTS_MAX]:
            if budget < 40:
                break
            add_field(fact.name, fact.value, fact.inline)
        budget += reserve
    if page == pages:
        if answer.notes:
            add_field("Notes", "\n".join(f"• {n}" for n in answer.notes), False)
        if answer.sources:
            lines = [
                f"[{_link_text(s.title)}]({s.url})"
                if _is_url(s.url)
                else f"{_link_text(s.title)} ({s.url})"
                for s in answer.sources
            ]
            add_field("Sources", _join_lines(lines, FIELD_VALUE_MAX), False)
    if chart and page == 1:
        embed.set_image(url=CHART_URL)
    return RenderedPage(embeds=[embed], page=page, pages=pages)


def message_size(embeds: list[discord.Embed]) -> int:
    return sum(embed_size(e) for e in embeds)


def _footer(answer: Answer, page: int, pages: int) -> str:
    bits = ["computewatch"]
    if answer.pages > 1:
        bits.append(f"page {answer.page} of {answer.pages}")
    if pages > 1:
        bits.append(f"part {page} of {pages}")
    return " · ".join(bits)


def _cell(value: object) -> str:
    text = " ".join(str(value).split())  # no newlines or tabs inside the code block
    return cut(text.replace("`", "'"), CELL_MAX)


def _block(header: str, rule: str, lines: list[str]) -> str:
    return "```\n" + "\n".join([header, rule, *lines]) + "\n```"


def _is_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and not any(c in url for c in " ()<>")


def _link_text(title: str) -> str:
    return cut(title.replace("[", "(").replace("]", ")"), 120)


def _join_lines(lines: list[str], limit: int) -> str:
    """Whole lines only, as many as fit, then a count of the rest."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        room = limit - size - (0 if last else len(f"\n… and {len(lines)} more"))
        if len(line) + 1 > room:
            out.append(cut(line, room - 1) if not out else f"… and {len(lines) - i} more")
            break
        out.append(line)
        size += len(line) + 1
    return cut("\n".join(out), limit)
