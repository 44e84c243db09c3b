"""The dependency rule of DESIGN.md, checked by import-linter on every test run."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_layers_follow_the_dependency_rule() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed")

    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr


def test_discord_is_imported_only_under_bot_discord_app() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("events", "store", "bot")
        for path in (ROOT / package).rglob("*.py")
        if "discord_app" not in path.parts
        and any(
            line.strip().startswith(("import discord", "from discord"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]

    assert offenders == []


def test_the_code_passes_ruff() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")

    check = subprocess.run([ruff, "check", "."], cwd=ROOT, capture_output=True, text=True)
    fmt = subprocess.run([ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True)

    assert check.returncode == 0, check.stdout
    assert fmt.returncode == 0, fmt.stdout
