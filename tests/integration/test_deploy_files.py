"""Dockerfile, docker-compose.yml, .env.example, .dockerignore agree with the code (no Docker)."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from aiohttp import web

from bot.api import add_routes
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = Settings.model_fields["computewatch_api_port"].default


# -- a tiny parser for the YAML that docker-compose.yml uses ----------------------------------
def parse_yaml(text: str) -> Any:
    """Block maps, block lists, scalars and JSON-style flow lists; enough for our compose file."""
    lines = [
        (len(line) - len(line.lstrip(" ")), line.strip())
        for line in (_strip_comment(raw) for raw in text.splitlines())
        if line.strip()
    ]
    value, end = _block(lines, 0, lines[0][0] if lines else 0)
    assert end == len(lines), f"could not parse line {end + 1}: {lines[end][1]!r}"
    return value


def _strip_comment(line: str) -> str:
    quote: str | None = None
    for i, ch in enumerate(line):
        if ch in "\"'" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1] == " "):
            return line[:i].rstrip()
    return line.rstrip()


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            items.append(_scalar(lines[i][1][2:].strip()))
            i += 1
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, sep, rest = lines[i][1].partition(":")
        assert sep, f"expected 'key: value', got {lines[i][1]!r}"
        i += 1
        if rest.strip():
            mapping[key.strip()] = _scalar(rest.strip())
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key.strip()], i = _block(lines, i, lines[i][0])
        else:
            mapping[key.strip()] = None
    return mapping, i


def _scalar(text: str) -> Any:
    if text.startswith("["):
        return json.loads(text)
    if text[:1] in "\"'" and text[-1:] == text[:1]:
        return text[1:-1]
    return text


# -- helpers ----------------------------------------------------------------------------------
def dockerfile() -> str:
    # Join continuation lines so that each instruction is one line.
    return re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", dockerfile(), re.M)]


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in instructions("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def compose() -> dict[str, Any]:
    parsed = parse_yaml((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(parsed, dict)
    return parsed


def api_paths() -> set[str]:
    app = web.Application()
    add_routes(app)
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def health_url(command: str) -> tuple[int, str]:
    match = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w./-]*)", command)
    assert match, f"no http://127.0.0.1:<port>/<path> in {command!r}"
    return int(match.group(1)), match.group(2)


# -- Dockerfile -------------------------------------------------------------------------------
def test_image_is_python_311_slim_and_installs_the_package() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    assert any(re.search(r"\bpip install (?:--\S+ )*\.(\s|$)", run) for run in instructions("RUN"))


def test_image_runs_as_a_non_root_user() -> None:
    users = instructions("USER")

    assert users, "the image must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_image_cmd_is_a_console_script_of_the_package() -> None:
    (cmd,) = instructions("CMD")
    argv = json.loads(cmd)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert argv == ["computewatch", "run"]
    assert argv[0] in scripts
    module, _, function = scripts[argv[0]].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_image_database_lives_on_the_volume() -> None:
    (volume,) = instructions("VOLUME")
    db = PurePosixPath(docker_env()["COMPUTEWATCH_DB"])

    assert volume.strip('[]" ') == "/data"
    assert db.parent == PurePosixPath("/data")


def test_image_exposes_and_probes_the_default_api_port_on_health() -> None:
    (healthcheck,) = instructions("HEALTHCHECK")
    port, path = health_url(healthcheck)

    assert instructions("EXPOSE") == [str(DEFAULT_PORT)]
    assert docker_env()["COMPUTEWATCH_API_PORT"] == str(DEFAULT_PORT)
    assert docker_env()["COMPUTEWATCH_API_HOST"] == "0.0.0.0"
    assert "curl" not in healthcheck and "urllib" in healthcheck
    assert (port, path) == (DEFAULT_PORT, "/health")
    assert path in api_paths()


# -- docker-compose.yml -----------------------------------------------------------------------
def test_compose_builds_the_bot_with_env_file_and_restart_policy() -> None:
    bot = compose()["services"]["bot"]

    assert bot["build"] == "."
    assert bot["env_file"] == ".env"
    assert bot["restart"] == "unless-stopped"


def test_compose_keeps_the_database_on_a_named_volume() -> None:
    parsed = compose()
    bot = parsed["services"]["bot"]
    mounts = [m.split(":") for m in bot["volumes"]]
    db = PurePosixPath(bot["environment"]["COMPUTEWATCH_DB"])

    assert [target for _, target in mounts] == ["/data"]
    assert all(source in parsed["volumes"] for source, _ in mounts)
    image_db = PurePosixPath(docker_env()["COMPUTEWATCH_DB"])
    assert db.parent == PurePosixPath("/data") == image_db.parent


def test_compose_publishes_the_api_on_loopback_only() -> None:
    bot = compose()["services"]["bot"]

    assert bot["ports"], "the API port should be published"
    for mapping in bot["ports"]:
        host_ip, _, container = mapping.split(":")
        assert host_ip == "127.0.0.1"
        assert int(container) == DEFAULT_PORT == int(bot["environment"]["COMPUTEWATCH_API_PORT"])


def test_compose_healthcheck_probes_health_on_the_api_port() -> None:
    test = compose()["services"]["bot"]["healthcheck"]["test"]

    port, path = health_url(" ".join(test))

    assert test[0] == "CMD" and "curl" not in test
    assert (port, path) == (DEFAULT_PORT, "/health")
    assert path in api_paths()


# -- .env.example and .dockerignore -----------------------------------------------------------
def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {}
    for n, line in enumerate(lines):
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            listed[match.group(1)] = n

    missing = {name.upper() for name in Settings.model_fields} - set(listed)

    assert missing == set()
    for name, n in listed.items():
        assert n > 0 and lines[n - 1].startswith("#"), f"{name} needs a comment above it"


def test_env_example_loads_as_the_defaults_and_holds_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)

    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]

    assert settings.discord_token is None
    assert settings.computewatch_api_token is None
    assert settings.computewatch_api_port == DEFAULT_PORT


def test_dockerignore_keeps_secrets_and_databases_out_of_the_image() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {".env", "*.duckdb", ".git", ".venv"} <= patterns
    assert not {"bot", "store", "events", "pyproject.toml", "README.md"} & patterns
