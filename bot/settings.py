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
    # One or more Discord channel ids, comma-separated, that get the weekly digest.
    digest_channel_id: str | None = None
    # When the digest is posted: a 5-field crontab read in DIGEST_TZ (an IANA zone name);
    # checked at startup by bot.schedule.validate_schedule, which names the bad setting.
    digest_cron: str = "0 9 * * mon"
    digest_tz: str = "UTC"
    # Alerts (bot/alerts.py): seconds between two checks of the rules (an alert posts within
    # about this long of the event that crosses it), and minutes before a rule may fire again.
    alert_interval_s: float = Field(default=20, gt=0, le=3600)
    alert_cooldown_min: float = Field(default=60, ge=0)
    review_channel_id: int | None = None
    # Sync slash commands globally too (they take up to an hour to appear); guild sync is the
    # default. Set only as an explicit owner action, e.g. DISCORD_SYNC_GLOBAL=1 for one run.
    discord_sync_global: bool = False
    # Attach a PNG chart to answers that have one (drawing takes a second or two).
    discord_charts: bool = True
    # Answers of read-only commands kept while the log is unchanged (bot/answer_cache.py), and
    # identical questions asked at once read once; 0 turns both off.
    answer_cache_size: int = Field(default=256, ge=0)
    # Import the bundled ledger into a new, empty database (the embedded default).
    computewatch_seed: bool = True
    # HTTP API (bot/api.py). In a container set the host to 0.0.0.0 and publish the port on
    # 127.0.0.1 only; without a token POST /events answers 401.
    computewatch_api_host: str = "127.0.0.1"
    computewatch_api_port: int = Field(default=8750, ge=0, le=65535)
    computewatch_api_token: SecretStr | None = None
    computewatch_api_max_body: int = Field(default=1024 * 1024, ge=1024)  # bytes per request
    # News feeds (bot/feeds.py): RSS/Atom URLs separated by commas or whitespace.
    computewatch_feeds: str = ""
    computewatch_feed_interval_min: float = Field(default=15, gt=0)
    computewatch_feed_timeout_s: float = Field(default=30, gt=0)
    computewatch_feed_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Failures in a row after which a feed is paused (and the review channel told).
    computewatch_feed_max_failures: int = Field(default=5, ge=1)
