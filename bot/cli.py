"""The command line: computewatch run | ask | import | export | backup | restore | sql | ..."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import UserInputError
from bot.settings import Settings
from store.errors import StoreError

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="computewatch",
        description="Market intelligence on the AI compute race: deals, positions, digests.",
    )
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="DuckDB file (default: $COMPUTEWATCH_DB, else the user data dir)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run the bot (Discord with DISCORD_TOKEN, else the local console)"
    )
    run.add_argument(
        "--sync-global",
        action="store_true",
        help="also sync the slash commands globally, to every server the bot is in (an owner's "
        "action; Discord takes up to an hour to show them); needs DISCORD_TOKEN",
    )

    ask = sub.add_parser("ask", help='answer one command, e.g. ask "/position anthropic"')
    ask.add_argument("line", help="the command line, e.g. '/compare anthropic openai'")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.add_argument("--chart", metavar="FILE", help="also write the answer's chart as PNG")

    imp = sub.add_parser("import", help="import events from a JSONL file")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import the valid lines even if some are invalid",
    )
    imp.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="processes that parse the file (default: one per core for a file over 16 MB)",
    )

    exp = sub.add_parser("export", help="export the log as JSONL and Parquet")
    exp.add_argument("dir", type=Path)
    exp.add_argument(
        "--parquet",
        action="store_true",
        help="write Parquet partitioned by month (DIR/events/month=YYYY-MM/)",
    )

    bak = sub.add_parser(
        "backup", help="back up the database into a new directory (also while the bot runs)"
    )
    bak.add_argument("dir", type=Path, help="a new or empty directory")
    res = sub.add_parser("restore", help="restore a backup into a new database file")
    res.add_argument("backup", type=Path, help="a directory made by `computewatch backup`")
    res.add_argument("new_db", type=Path, help="the database file to create (must not exist)")

    ext = sub.add_parser("extract", help="find deals in article text files (no database)")
    ext.add_argument("files", type=Path, nargs="+")
    ext.add_argument("--jsonl", action="store_true", help="one JSON object per deal (default)")

    sql = sub.add_parser("sql", help="run a read-only SQL query")
    sql.add_argument("query")
    sql.add_argument("--max-rows", type=int, default=1000)
    sql.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    sql.add_argument(
        "--no-api", action="store_true", help="query the file directly, not a running bot's API"
    )
    dig = sub.add_parser("digest", help="print the weekly digest of a past ISO week")
    dig.add_argument("--week", help="ISO week, e.g. 2026-W05 (default: the last complete week)")
    dig.add_argument("--as-json", action="store_true", help="print the digest as JSON")
    dig.add_argument(
        "--post",
        action="store_true",
        help="also post it to DIGEST_CHANNEL_ID (needs DISCORD_TOKEN)",
    )
    _add_feed_parsers(sub)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def _add_feed_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`feeds poll --once` and `review [accept ID | reject ID --reason ...]`."""
    feeds = sub.add_parser("feeds", help="news feeds (COMPUTEWATCH_FEEDS)")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    poll = feeds_sub.add_parser("poll", help="poll the feeds and record deal candidates")
    poll.add_argument(
        "--once", action="store_true", required=True, help="poll every feed once and exit"
    )
    poll.add_argument("--force", action="store_true", help="ignore backoff and pauses")

    review = sub.add_parser("review", help="list pending feed candidates; accept or reject one")
    review_sub = review.add_subparsers(dest="review_command", metavar="ACTION")
    rev_accept = review_sub.add_parser("accept", help="accept a candidate (writes deal events)")
    rev_accept.add_argument("id", help="candidate id (a unique prefix is enough)")
    rev_accept.add_argument("--status", help="override the status read from the article")
    rev_accept.add_argument("--deal", help="attach to this deal id instead of matching")
    rev_reject = review_sub.add_parser("reject", help="reject a candidate (writes no deal event)")
    rev_reject.add_argument("id", help="candidate id (a unique prefix is enough)")
    rev_reject.add_argument("--reason", required=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
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
    if args.sync_global:
        if settings.discord_token is None:
            raise UserInputError(
                "run --sync-global needs DISCORD_TOKEN: it syncs the bot's commands"
            )
        # The owner's explicit action, for this run only (as DISCORD_SYNC_GLOBAL=1 would be).
        settings = settings.model_copy(update={"discord_sync_global": True})
    if settings.discord_token is not None:
        from bot.runner import run_discord

        return run_discord(settings, db)
    from bot.local import run_local

    return run_local(settings, db)


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
    with args.file.open("rb") as fh:
        total = sum(1 for _ in fh)
    with EventStore(db) as store, Progress(transient=True, disable=total < 20_000) as bar:
        task = bar.add_task("importing", total=total)
        report = import_events(
            store,
            args.file,
            skip_invalid=args.skip_invalid,
            progress=lambda lines: bar.update(task, completed=lines),
            workers=args.workers,
        )
    for rejected in report.rejected[:50]:
        print(f"line {rejected.line}: {rejected.reason}", file=sys.stderr)
    if len(report.rejected) > 50:
        print(f"... and {len(report.rejected) - 50} more rejected lines", file=sys.stderr)
    if report.rejected and not args.skip_invalid:
        print(
            f"{len(report.rejected)} invalid line(s): nothing was imported "
            "(fix them, or use --skip-invalid to import the rest)",
            file=sys.stderr,
        )
        return 1
    print(f"{report.new} new, {report.present} already present, {len(report.rejected)} rejected")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from store.log import EventStore
    from store.transfer import export_events

    with EventStore(db) as store:
        paths = export_events(store, args.dir, by_month=args.parquet)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot.backup import run_backup

    return run_backup(settings, db, args.dir)


def cmd_restore(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot.backup import run_restore

    return run_restore(args.backup, args.new_db)


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

    host = settings.computewatch_api_host
    api_url = None if args.no_api else f"http://{host}:{settings.computewatch_api_port}"
    return run_sql(
        db,
        args.query,
        max_rows=args.max_rows,
        timeout_s=args.timeout,
        as_csv=args.csv,
        seed=settings.computewatch_seed,
        api_url=api_url,
    )


def cmd_digest(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot.digest import (
        build_digest,
        check_week_is_over,
        digest_answer,
        last_complete_week,
        parse_week,
    )
    from bot.render import render_json, render_text
    from bot.services import open_services

    if args.post and settings.discord_token is None:
        raise UserInputError("digest --post needs DISCORD_TOKEN (and DIGEST_CHANNEL_ID)")
    if args.post:
        from bot.schedule import validate_schedule

        if not validate_schedule(settings).channels:
            raise UserInputError(
                "digest --post needs DIGEST_CHANNEL_ID (the channel ids to post to)"
            )
    services = open_services(db, seed=settings.computewatch_seed)
    try:
        now = services.context.clock.now()
        week = parse_week(args.week) if args.week else last_complete_week(now)
        check_week_is_over(week, now)
        ctx = services.context
        answer = digest_answer(build_digest(ctx.queries, week, ctx.registry), ctx.registry)
        sys.stdout.write(render_json(answer) if args.as_json else render_text(answer))
        if args.post:
            return _post_digest(settings, services, week)
    finally:
        services.close()
    return 0


POST_STATUS = {
    "posted": "posted",
    "already_posted": "already posted before: not posted again",
    "claimed_elsewhere": "taken on by another run (the bot?): not posted again",
    "failed": "FAILED (see the log): not retried, so that it is never posted twice",
}


def _post_digest(settings: Settings, services: Services, week: str) -> int:
    """Post through Discord's REST API, at most once per channel and week; 1 if a post failed."""
    import asyncio

    from bot.discord_app.poster import post_digest_rest

    outcomes = asyncio.run(post_digest_rest(settings, services, week))
    for o in outcomes:
        message = f" (message {o.message_id})" if o.message_id else ""
        print(
            f"digest {o.week} -> channel {o.channel_id}: {POST_STATUS[o.status]}{message}",
            file=sys.stderr,
        )
    if not outcomes:
        print(f"digest {week}: could not be built (see the log); nothing posted", file=sys.stderr)
    return 0 if outcomes and all(o.status != "failed" for o in outcomes) else 1


def cmd_feeds(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    import asyncio

    from bot.feeds import run_poll_once

    try:
        return asyncio.run(run_poll_once(settings, db, force=args.force))
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc


def cmd_review(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from bot import review
    from bot.services import open_services

    services = open_services(db, seed=settings.computewatch_seed)
    store = services.store
    try:
        if args.review_command is None:
            pending = review.pending_candidates(store)
            for c in pending:
                d = c.payload.deal
                figures = ", ".join(
                    f
                    for f in (
                        f"{d.capacity_mw:g} MW" if d.capacity_mw else "",
                        f"${d.value_usd:,.0f}" if d.value_usd else "",
                    )
                    if f
                )
                print(
                    f"{c.short_id}  {c.payload.action:<8} {c.payload.matched_deal or '-'}  "
                    f"{d.lab} {d.kind} {d.status}"
                    f"{' ' + figures if figures else ''}  {c.payload.article_url}"
                )
            print(f"{len(pending)} pending candidate(s)")
            return 0
        stream = review.resolve_stream(store, args.id)
        if args.review_command == "accept":
            edits = {"status": args.status} if args.status else {}
            if args.deal:
                edits["deal_id"] = args.deal
            decision = review.accept(store, stream, "cli", edits)
            print(
                f"accepted {stream}: {decision.action} of deal {decision.deal_id} "
                f"({len(decision.events)} events)"
            )
        else:
            review.reject(store, stream, "cli", args.reason)
            print(f"rejected {stream}")
        return 0
    finally:
        services.close()


COMMANDS = {
    "run": cmd_run,
    "ask": cmd_ask,
    "import": cmd_import,
    "export": cmd_export,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "extract": cmd_extract,
    "sql": cmd_sql,
    "digest": cmd_digest,
    "feeds": cmd_feeds,
    "review": cmd_review,
}
