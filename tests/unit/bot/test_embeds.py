"""The embed renderer keeps every Discord limit, whatever the answer, and loses no table row."""

from __future__ import annotations

import discord
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers import Answer, ChartRequest, Fact, Source, Table
from bot.discord_app.embeds import (
    CHART_URL,
    DESCRIPTION_MAX,
    EMBED_TOTAL_MAX,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    FOOTER_MAX,
    TITLE_MAX,
    cut,
    embed_size,
    page_count,
    render_answer,
    table_pages,
)

words = st.text(min_size=0, max_size=60)
long_text = st.text(min_size=0, max_size=6000)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    width = draw(st.integers(1, 9))
    columns = draw(st.lists(words, min_size=width, max_size=width))
    rows = draw(
        st.lists(st.lists(st.text(max_size=120), min_size=0, max_size=width + 1), max_size=120)
    )
    numeric = draw(st.lists(st.booleans(), max_size=width))
    return Table(columns=columns, rows=rows, numeric=numeric)


answers = st.builds(
    Answer,
    command=st.sampled_from(["position", "compare", "deals", "deal", "explain"]),
    title=st.text(max_size=600),
    summary=st.none() | long_text,
    facts=st.lists(
        st.builds(
            Fact, name=st.text(max_size=400), value=st.text(max_size=2000), inline=st.booleans()
        ),
        max_size=40,
    ),
    table=st.none() | tables(),
    sources=st.lists(
        st.builds(
            Source,
            title=st.text(max_size=400),
            url=st.sampled_from(
                ["https://example.com/a", "seed:001.txt", "https://example.com/" + "x" * 500]
            ),
        ),
        max_size=40,
    ),
    notes=st.lists(st.text(max_size=800), max_size=40),
    chart=st.none() | st.just(ChartRequest(labs=["acme-ai"], title="MW by stage")),
    page=st.integers(1, 5),
    pages=st.integers(1, 5),
)


def assert_within_limits(embeds: list[discord.Embed]) -> None:
    assert 1 <= len(embeds) <= EMBEDS_PER_MESSAGE
    assert sum(embed_size(e) for e in embeds) <= EMBED_TOTAL_MAX
    for embed in embeds:
        assert len(embed.title or "") <= TITLE_MAX
        assert len(embed.description or "") <= DESCRIPTION_MAX
        assert len(embed.fields) <= FIELDS_MAX
        for field in embed.fields:
            assert 0 < len(field.name or "") <= FIELD_NAME_MAX
            assert 0 < len(field.value or "") <= FIELD_VALUE_MAX
        assert len(embed.footer.text or "") <= FOOTER_MAX


@settings(max_examples=150, deadline=None)
@given(answers)
def test_every_page_of_any_answer_keeps_discords_limits(answer: Answer) -> None:
    pages = page_count(answer)

    rendered = [render_answer(answer, page=p, chart=True) for p in range(1, pages + 1)]

    for page in rendered:
        assert_within_limits(page.embeds)
        assert page.pages == pages
    assert [page.page for page in rendered] == list(range(1, pages + 1))


@settings(max_examples=100, deadline=None)
@given(tables())
def test_table_pages_keep_every_row_in_order(table: Table) -> None:
    pages = table_pages(table)

    lines = [line for page in pages for line in page.splitlines()[3:-1]]

    if table.rows:
        assert len(lines) == len(table.rows)
    assert all(len(page) <= DESCRIPTION_MAX for page in pages)


def test_short_answer_is_one_page_with_facts_notes_and_sources() -> None:
    answer = Answer(
        command="position",
        title="Acme AI: compute position",
        summary="As of now.",
        facts=[Fact(name="Contracted", value="1.2 GW")],
        table=Table(columns=["Supplier", "MW"], rows=[["Zenith Cloud", "1,200"]]),
        notes=["one note"],
        sources=[Source(title="Acme news", url="https://example.com/acme")],
    )

    page = render_answer(answer)

    [embed] = page.embeds
    assert page.pages == 1
    assert embed.title == "Acme AI: compute position"
    assert [f.name for f in embed.fields] == ["Contracted", "Notes", "Sources"]
    assert "Zenith Cloud" in (embed.description or "")
    assert "[Acme news](https://example.com/acme)" in embed.fields[2].value


def test_long_table_is_split_into_pages_with_facts_first_and_notes_last() -> None:
    rows = [[f"deal-{i:03}", f"{i} MW"] for i in range(100)]
    answer = Answer(
        command="deals",
        title="Deals",
        facts=[Fact(name="Deals", value="100")],
        table=Table(columns=["deal", "capacity"], rows=rows),
        notes=["last"],
    )

    pages = [render_answer(answer, page=p) for p in range(1, page_count(answer) + 1)]

    assert len(pages) > 1
    assert [f.name for f in pages[0].embeds[0].fields] == ["Deals"]
    assert [f.name for f in pages[-1].embeds[0].fields] == ["Notes"]
    assert "deal-099" in (pages[-1].embeds[0].description or "")
    assert f"part 2 of {len(pages)}" in (pages[1].embeds[0].footer.text or "")


def test_chart_is_shown_from_the_attachment_on_the_first_page_only() -> None:
    answer = Answer(
        command="position",
        title="t",
        table=Table(columns=["a"], rows=[[str(i)] for i in range(40)]),
    )

    first, second = (
        render_answer(answer, page=1, chart=True),
        render_answer(answer, page=2, chart=True),
    )

    assert first.embeds[0].image.url == CHART_URL
    assert second.embeds[0].image.url is None


def test_cut_keeps_short_text_and_marks_what_it_cut() -> None:
    assert cut("short", 10) == "short"
    assert cut("a" * 20, 10) == "a" * 9 + "…"
    assert len(cut("a" * 5000, 4096)) == 4096
