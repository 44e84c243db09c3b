"""The answer model every command returns; renderers turn it into text, JSON or a Discord embed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Fact(BaseModel):
    """A named figure shown inline (embed field, text line)."""

    model_config = ConfigDict(frozen=True)
    name: str
    value: str
    inline: bool = True


class Table(BaseModel):
    model_config = ConfigDict(frozen=True)
    columns: list[str]
    rows: list[list[str]]
    # Columns that hold numbers are right-aligned by the renderers.
    numeric: list[bool] = Field(default_factory=list)


class Source(BaseModel):
    model_config = ConfigDict(frozen=True)
    title: str
    url: str


class ChartRequest(BaseModel):
    """What to draw: positions of these labs over time, up to as_of, as known at known_at."""

    model_config = ConfigDict(frozen=True)
    labs: list[str]
    title: str
    as_of: str | None = None
    known_at: str | None = None


class Answer(BaseModel):
    """A command's answer: what to show (title, facts, table, sources) and its JSON (`data`)."""

    model_config = ConfigDict(frozen=True)
    command: str
    title: str
    summary: str | None = None
    facts: list[Fact] = Field(default_factory=list)
    table: Table | None = None
    sources: list[Source] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    chart: ChartRequest | None = None
    page: int = 1
    pages: int = 1
    data: dict[str, Any] = Field(default_factory=dict)
    # Personal or error answers are shown only to the caller where the surface allows it.
    ephemeral: bool = False
