"""The command line: computewatch run | ask | import | export | extract | sql."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.errors import UserInputError
from bot.settings import Settings
from store.errors import StoreError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="computewatch",
        description="Market intelligence on the AI compute race: deals, positions, digests.",
    )
    parser.add_argument("--db", type=Path, default=None,
                        help="DuckDB file (default: $COMPUTEWATCH_DB, else the user data dir)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the bot (Discord with DISCORD_TOKEN, else the local console)")

    ask = sub.add_parser("ask", help='answer one command, e.g. ask "/position anthropic"')
    ask.add_argument("line", help="the command line, e.g. '/compare anthropic openai'")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.add_argument("--chart", metavar="FILE", help="also write the answer's chart as PNG")

    imp = sub.add_parser("import", help="import events from a JSONL file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--skip-invalid", action="store_true",
                     help="import the valid lines even if some are invalid")

    exp = sub.add_parser("export", help="export the log as JSONL and Parquet")
    exp.add_argument("dir", type=Path)

    ext = sub.add_parser("extract", help="find deals in article text files (no database)")
    ext.add_argument("files", type=Path, nargs="+")
    ext.add_argument("--jsonl", action="store_true", help="one JSON object per deal (default)")

    sql = sub.add_parser("sql", help="run a read-only SQL query")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=1000)
    sql.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    db = args.db or settings.computewatch_db
    try:
        return COMMANDS[args.command](args, settings, db)
    except (UserInputError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cmd_run(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot.services import open_services

    if settings.discord_token is not None:
        from bot.runner import run_discord

        return run_discord(settings, db)
    from bot.console import run_console

    services = open_services(db, seed=settings.computewatch_seed)
    try:
        history = db.parent / "console_history"
        run_console(services, history=history)
    finally:
        services.close()
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot.commands.registry import run_command_line
    from bot.console import write_chart
    from bot.render import render_json, render_text
    from bot.services import open_services

    services = open_services(db, seed=settings.computewatch_seed)
    try:
        answer = run_command_line(services.context, services.commands, args.line)
        sys.stdout.write(render_json(answer) if args.json else render_text(answer))
        if args.chart:
            print(write_chart(services, answer, args.chart), file=sys.stderr)
    finally:
        services.close()
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from rich.progress import Progress

    from store.log import EventStore
    from store.transfer import import_events

    if not args.file.is_file():
        raise UserInputError(f"{args.file} is not a file")
    total = sum(1 for line in args.file.open("rb") if line.strip())
    with EventStore(db) as store, Progress(transient=True, disable=total < 20_000) as bar:
        task = bar.add_task("importing", total=total)
        report = import_events(store, args.file, skip_invalid=args.skip_invalid,
                               progress=lambda n: bar.advance(task, n))
    for rejected in report.rejected[:50]:
        print(f"line {rejected.line}: {rejected.reason}", file=sys.stderr)
    if len(report.rejected) > 50:
        print(f"... and {len(report.rejected) - 50} more rejected lines", file=sys.stderr)
    if report.rejected and not args.skip_invalid:
        print(f"{len(report.rejected)} invalid line(s): nothing was imported "
              "(fix them, or use --skip-invalid to import the rest)", file=sys.stderr)
        return 1
    print(f"{report.new} new, {report.present} already present, "
          f"{len(report.rejected)} rejected")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from store.log import EventStore
    from store.transfer import export_events

    with EventStore(db) as store:
        paths = export_events(store, args.dir)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def cmd_extract(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from events.extract import candidates_to_jsonl_rows, extract_candidates

    status = 0
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            print(f"error: {path}: {exc.strerror}", file=sys.stderr)
            status = 1
            continue
        for row in candidates_to_jsonl_rows(str(path), extract_candidates(text)):
            print(json.dumps(row, ensure_ascii=False))
    return status


def cmd_sql(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot.sql_output import run_sql

    return run_sql(db, args.query, max_rows=args.max_rows, timeout_s=args.timeout,
                   as_csv=args.csv, seed=settings.computewatch_seed)


COMMANDS = {
    "run": cmd_run,
    "ask": cmd_ask,
    "import": cmd_import,
    "export": cmd_export,
    "extract": cmd_extract,
    "sql": cmd_sql,
}
