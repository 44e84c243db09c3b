"""`computewatch backup DIR` and `restore BACKUP NEW_DB`, and the API side of a backup.

DuckDB lets one process hold the file for writing, so while the bot runs a backup goes through
it: POST /backup makes the backup in the bot's process (one read transaction, appends go on)
and streams it back as a tar of the backup directory; the CLI unpacks it and checks every
checksum. When no bot holds the file, the CLI reads the file itself (read-only).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from aiohttp import hdrs, web
from pydantic import SecretStr

from bot.errors import UserInputError
from bot.settings import Settings
from store.backup import (
    MANIFEST,
    Manifest,
    backup_file,
    backup_store,
    restore_backup,
    verify_backup,
)
from store.errors import DatabaseLockedError
from store.log import EventStore

TAR_TYPE = "application/x-tar"
CHUNK = 1 << 20
# What a backup tar may hold: the manifest and one Parquet file per table, nothing else.
MEMBER = re.compile(r"^(manifest\.json|[a-z_][a-z0-9_]*\.parquet)$")
# The server reads the whole database before it sends the first byte.
DOWNLOAD_TIMEOUT_S = 600


# -- server side ----------------------------------------------------------------------------
async def send_backup(request: web.Request, store: EventStore) -> web.StreamResponse:
    """Back up the running store and stream the backup directory as a tar."""
    await asyncio.to_thread(_remove_leftovers, store.path)
    work = Path(
        await asyncio.to_thread(
            tempfile.mkdtemp,
            prefix=f".{store.path.name}.backup-{os.getpid()}-",
            dir=store.path.parent,
        )
    )
    try:
        manifest = await asyncio.to_thread(backup_store, store, work / "backup")
        tar = work / "backup.tar"
        await asyncio.to_thread(_write_tar, work / "backup", manifest, tar)
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: TAR_TYPE,
                hdrs.CONTENT_DISPOSITION: 'attachment; filename="computewatch-backup.tar"',
                "X-Computewatch-Head": str(manifest.head),
            }
        )
        response.content_length = tar.stat().st_size
        await response.prepare(request)
        with tar.open("rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def _remove_leftovers(db: Path) -> None:
    """Scratch directories of backups that a killed bot left (another pid: only one process
    holds the database, so those are not in use)."""
    for leftover in db.parent.glob(f".{db.name}.backup-*"):
        if not leftover.name.startswith(f".{db.name}.backup-{os.getpid()}-"):
            shutil.rmtree(leftover, ignore_errors=True)


def _write_tar(directory: Path, manifest: Manifest, tar: Path) -> None:
    with tarfile.open(tar, "w") as out:
        for table in manifest.tables.values():
            out.add(directory / table.file, arcname=table.file)
        out.add(directory / MANIFEST, arcname=MANIFEST)


# -- CLI side -------------------------------------------------------------------------------
def run_backup(settings: Settings, db: Path, directory: Path) -> int:
    """Back up `db` into `directory` (new or empty): from the file when no process holds it,
    else through the running bot's API. Prints what the backup holds."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UserInputError(f"{directory} exists and is not empty; back up into a new directory")
    if not db.is_file():
        raise UserInputError(f"there is no database at {db}")
    api_url = f"http://{settings.computewatch_api_host}:{settings.computewatch_api_port}"
    with _partial(directory) as partial:
        try:
            manifest = backup_file(db, partial)
            via = f"from {db}"
        except DatabaseLockedError:
            manifest = fetch_backup(api_url, settings.computewatch_api_token, partial, db)
            via = f"through the running bot at {api_url}"
    print(f"backed up {manifest.events} events (seq 1..{manifest.head}) {via} into {directory}")
    for name, table in sorted(manifest.tables.items()):
        print(f"  {table.file}: {name}, {table.rows} rows, sha256 {table.sha256}")
    return 0


def fetch_backup(api_url: str, token: SecretStr | None, directory: Path, db: Path) -> Manifest:
    """Have the running bot make a backup and unpack it into `directory`, checked."""
    if token is None or not token.get_secret_value().strip():
        raise UserInputError(
            f"{db} is open in a running bot; a backup goes through its API, which needs "
            "COMPUTEWATCH_API_TOKEN (the bot's token) in this environment too"
        )
    request = urllib.request.Request(
        f"{api_url}/backup",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token.get_secret_value().strip()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            unpack(response, directory)
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        raise UserInputError(f"the running bot refused the backup ({exc.code}): {detail}") from None
    except (OSError, tarfile.TarError) as exc:
        raise UserInputError(
            f"{db} is open in another process, and the backup through the API at {api_url} "
            f"failed: {exc}. Is that process a computewatch bot with its API on this address?"
        ) from None
    return verify_backup(directory)


def unpack(stream: IO[bytes], directory: Path) -> None:
    """Unpack a backup tar: only a manifest and Parquet files, by plain name, nothing else."""
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not (member.isfile() and MEMBER.match(member.name)):
                raise UserInputError(f"unexpected entry {member.name!r} in the backup stream")
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            with (directory / member.name).open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK)


@contextmanager
def _partial(directory: Path) -> Iterator[Path]:
    """A scratch directory beside `directory` that takes its name only when complete."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    partial = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        if directory.exists():
            directory.rmdir()  # checked empty above
        partial.rename(directory)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def run_restore(backup: Path, db: Path) -> int:
    """Restore a backup into a new database file and say how to use it."""
    manifest = restore_backup(backup, db)
    print(
        f"restored {manifest.events} events (seq 1..{manifest.head}, checksums and digest "
        f"verified) into {db}; positions were rebuilt from the log.\n"
        f"Run the bot on it with: COMPUTEWATCH_DB={db} computewatch run"
    )
    return 0
