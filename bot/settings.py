"""Settings: one pydantic-settings model, read from the environment and a .env file."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_db_path() -> Path:
    """The embedded default: a DuckDB file in the user's data directory."""
    return Path(user_data_dir("computewatch", appauthor=False)) / "computewatch.duckdb"


class Settings(BaseSettings):
    """Every setting of computewatch (environment variables, case-insensitive, or .env)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    discord_token: SecretStr | None = None
    discord_guild_id: int | None = None
    computewatch_db: Path = Field(default_factory=default_db_path)
    analyst_role_id: int | None = None
    digest_channel_id: str | None = None
    review_channel_id: int | None = None
    # Import the bundled ledger into a new, empty database (the embedded default).
    computewatch_seed: bool = True
