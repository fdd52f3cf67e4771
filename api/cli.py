"""The `usage-api` command (docs/operations.md, Command line)."""

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO

import msgspec
import psycopg

from api.alerts.watcher import Watcher, watcher_of
from api.core.events import MAX_TEXT_LENGTH, SLUG, is_slug
from api.core.parsing import Accepting
from api.core.timestamps import parse_rfc3339, utc_iso
from api.settings import Settings
from api.storage import migrations
from api.storage.availability import Database
from api.storage.db import connect_kwargs
from api.storage.folder import Folder, FolderStatus
from api.storage.imports import ImportResult, import_events
from api.storage.keys import Scope, create_key, list_keys, revoke_key

if TYPE_CHECKING:
    from api.export.exporter import Passed


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="usage-api", description="Usage metering service")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="bring the database schema to the latest")
    migrate.set_defaults(run=_migrate)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key; prints it on the last line")
    create.add_argument("--scope", required=True, choices=[scope.value for scope in Scope])
    create.add_argument("--org", type=_slug, help="the organization (scopes read and manage)")
    create.add_argument("--name", type=_key_name, help="what the key is for, as listed")
    create.add_argument(
        "--expires",
        type=_expiry,
        metavar="WHEN",
        help="refused from then on: RFC 3339 (2027-01-31T00:00:00Z) or a duration (90d, 12h)",
    )
    create.set_defaults(run=_create_key)
    key_commands.add_parser("list", help="list keys (never the keys themselves)").set_defaults(
        run=_list_keys
    )
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_revoke_key)

    rebuild = commands.add_parser(
        "rebuild", help="recompute rollups and allocation segments from the raw events"
    )
    rebuild.add_argument("--org", type=_slug, help="one organization (default: all)")
    rebuild.set_defaults(run=_rebuild)

    load = commands.add_parser(
        "import", help="bulk-load CloudEvents of any age within the raw retention"
    )
    load.add_argument(
        "file", help="JSON lines (an event or an array of them per line), a JSON array, or -"
    )
    load.set_defaults(run=_import)

    maintain = commands.add_parser(
        "maintain",
        help="partitions ahead, raw months and receipts past the retention dropped (idempotent;"
        " run daily)",
    )
    maintain.set_defaults(run=_maintain)

    fold = commands.add_parser(
        "fold",
        help="fold queued events into the rollups, for servers run with USAGE_FOLD_IN_SERVER=0",
    )
    fold.add_argument(
        "--once", action="store_true", help="fold what is queued now, then exit (default: run)"
    )
    fold.set_defaults(run=_fold)
    watch = commands.add_parser(
        "watch",
        help="evaluate usage thresholds and deliver their webhooks, for servers run with "
        "USAGE_WATCH_IN_SERVER=0",
    )
    watch.add_argument("--once", action="store_true", help="one pass, then exit (default: run)")
    watch.set_defaults(run=_watch)

    export = commands.add_parser(
        "export",
        help="export events and hourly figures to USAGE_EXPORT_URL as Parquet, for servers run"
        " with USAGE_EXPORT_IN_SERVER=0, or to backfill",
    )
    export.add_argument("--once", action="store_true", help="one pass, then exit (default: run)")
    export.add_argument(
        "--since",
        type=_date,
        metavar="YYYY-MM-DD",
        help="export every day from this UTC date again (a backfill), then carry on",
    )
    export.set_defaults(run=_export)

    distribute = commands.add_parser(
        "distribute",
        help="move a single-node database onto Citus, a table at a time (resumable)",
    )
    distribute.set_defaults(run=_distribute)

    demo = commands.add_parser("demo", help="load demo organizations over the last 35 days")
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(run=_demo)
    return parser


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _slug(value: str) -> str:
    if not is_slug(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an organization slug ({SLUG})")
    return value


def _key_name(value: str) -> str:
    if not 1 <= len(value) <= MAX_TEXT_LENGTH:
        raise argparse.ArgumentTypeError(f"a key's name has 1 to {MAX_TEXT_LENGTH} characters")
    return value


_DURATION = re.compile(r"(?P<count>[1-9][0-9]{0,5})(?P<unit>[mhd])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def _expiry(value: str) -> datetime:
    """When a key expires: an RFC 3339 time, or a duration from now (90d, 12h, 30m)."""
    now = datetime.now(UTC)
    duration = _DURATION.fullmatch(value)
    if duration is not None:
        return now + int(duration["count"]) * _UNITS[duration["unit"]]
    try:
        moment = parse_rfc3339(value, truncate=True)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{value!r}: an RFC 3339 time (2027-01-31T00:00:00Z) or a duration (90d, 12h, 30m)"
            f" ({error})"
        ) from None
    if moment <= now:
        raise argparse.ArgumentTypeError(f"{value!r} is not in the future")
    return moment


def _migrate(_: argparse.Namespace) -> None:
    migrations.upgrade(Settings.from_env().database_url)


def _serve(args: argparse.Namespace) -> None:
    from api.web.app import create_app
    from api.web.http_server import serve

    settings = Settings.from_env()
    serve(create_app(settings), args.host, args.port, settings)


async def _connect() -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(
        Settings.from_env().database_url, **connect_kwargs()
    )


def _create_key(args: argparse.Namespace) -> None:
    scope = Scope(args.scope)
    if scope.bound != (args.org is not None):
        raise SystemExit(
            "usage-api keys create: --org is required with --scope read or manage "
            "and not allowed with ingest or admin"
        )

    async def create() -> None:
        async with await _connect() as conn:
            created = await create_key(
                conn, scope, args.org, name=args.name, expires_at=args.expires
            )
        org = f" for organization {args.org}" if args.org else ""
        expiry = f", expiring at {utc_iso(args.expires)}" if args.expires else ""
        print(f"Created {scope.value} key {created.key_id}{org}{expiry}. It is shown only once:")
        print(created.key)

    asyncio.run(create())


def _list_keys(_: argparse.Namespace) -> None:
    async def show() -> None:
        async with await _connect() as conn:
            keys = await list_keys(conn)
        print(
            f"{'KEY_ID':<17} {'SCOPE':<7} {'ORG':<24} {'CREATED':<20} {'EXPIRES':<20} "
            f"{'LAST USED':<17} {'REVOKED':<20} NAME"
        )
        for key in keys:
            print(
                f"{key.key_id:<17} {key.scope.value:<7} {key.org or '*':<24} "
                f"{_when(key.created_at):<20} {_when(key.expires_at):<20} "
                f"{_when(key.last_used_at, minute=True):<17} {_when(key.revoked_at):<20} "
                f"{key.name or '-'}"
            )

    asyncio.run(show())


def _when(moment: datetime | None, *, minute: bool = False) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M" if minute else "%Y-%m-%d %H:%M:%S")


def _revoke_key(args: argparse.Namespace) -> None:
    async def revoke() -> None:
        async with await _connect() as conn:
            if not await revoke_key(conn, args.key_id):
                raise SystemExit(f"no live key with id {args.key_id}")
        print(f"Revoked key {args.key_id}")

    asyncio.run(revoke())


def _demo(args: argparse.Namespace) -> None:
    from api.dev.demo import load_demo

    asyncio.run(load_demo(Settings.from_env().database_url, seed=args.seed))


def _import(args: argparse.Namespace) -> None:
    """Invalid events are listed on stderr; the last line on stdout is the result as JSON;
    the exit status is 1 if any event was invalid."""
    settings = Settings.from_env()
    accepting = Accepting.imported(datetime.now(UTC), settings.raw_retention_days)

    async def run(source: BinaryIO, size: int | None) -> ImportResult:
        async with await _connect() as conn:
            return await import_events(conn, source, accepting, size=size, report=sys.stderr)

    if args.file == "-":
        result = asyncio.run(run(sys.stdin.buffer, None))
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115 - closed below, after the run
        except OSError as error:
            raise SystemExit(f"usage-api import: {error.strerror}: {args.file}") from None
        with source:
            result = asyncio.run(run(source, os.fstat(source.fileno()).st_size))
    print(msgspec.json.encode(result).decode())
    if result.invalid:
        raise SystemExit(1)


def _maintain(_: argparse.Namespace) -> None:
    from api.storage.partitions import maintain

    retention_days = Settings.from_env().raw_retention_days

    async def run() -> None:
        async with await _connect() as conn:
            done = await maintain(conn, datetime.now(UTC), retention_days)
        for name in done.created:
            print(f"created partition {name}")
        if done.moved:
            print(f"moved {done.moved:,} rows out of default partitions into their months")
        for name in done.dropped:
            print(f"dropped partition {name} (older than {retention_days} days)")
        for name in done.kept:
            print(
                f"kept partition {name} (older than {retention_days} days): its events are "
                "not all exported yet (USAGE_EXPORT_URL); dropped once they are"
            )
        if done.deleted:
            print(f"deleted {done.deleted:,} rows older than {retention_days} days")
        if done.receipts:
            print(f"deleted {done.receipts:,} receipts of events older than {retention_days} days")
        if not (done.created or done.dropped or done.kept or done.deleted or done.receipts):
            print("nothing to do: partitions exist three months ahead, none is past retention")

    asyncio.run(run())


def _rebuild(args: argparse.Namespace) -> None:
    from api.storage import exports
    from api.storage.partitions import raw_horizon
    from api.storage.rebuild import rebuild

    retention_days = Settings.from_env().raw_retention_days
    since = raw_horizon(datetime.now(UTC), retention_days)

    async def run() -> None:
        async with await _connect() as conn:
            await rebuild(conn, args.org, since)
            await exports.rebuilt(conn, args.org, since.date(), datetime.now(UTC).date())

    asyncio.run(run())
    print(
        f"rebuilt from {since:%Y-%m-%d} (the raw events kept, USAGE_RAW_RETENTION_DAYS="
        f"{retention_days}) to now; figures before it are the rollups' as they were"
    )


_FOLD_REPORT_SECONDS = 10


def _fold(args: argparse.Namespace) -> None:
    """The folder of a server process, alone: a line every 10 s while it folds."""
    settings = Settings.from_env()

    async def run() -> None:
        database = Database(settings.database_url, 2)
        await database.open()
        folder = Folder(database, folding=True, interval=settings.fold_interval)
        try:
            if args.once:
                await folder.once()
                print(_fold_line(folder.status, folder.status.folded_rows), flush=True)
                return
            folder.start()
            reported = 0
            while True:
                await asyncio.sleep(_FOLD_REPORT_SECONDS)
                status = folder.status
                if status.folded_rows != reported or status.error:
                    print(_fold_line(status, status.folded_rows - reported), flush=True)
                    reported = status.folded_rows
        finally:
            await folder.stop()
            await database.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _fold_line(status: FolderStatus, folded: int) -> str:
    if status.error:
        return f"folding failed: {status.error}"
    queue = status.queue
    return (
        f"folded {folded:,} events; {queue.rows:,} waiting, the oldest for "
        f"{queue.oldest_seconds:.1f} s"
    )


def _watch(args: argparse.Namespace) -> None:
    """The thresholds' watcher of a server process, alone: a line every 10 s while it finds
    crossings or sends webhooks."""
    settings = Settings.from_env()

    async def run() -> None:
        database = Database(settings.database_url, 3)
        await database.open()
        watcher = watcher_of(database, settings)
        try:
            if args.once:
                watched = await watcher.once()
                print(
                    "another watcher is running" if watched is None else _watch_line(watcher),
                    flush=True,
                )
                return
            watcher.start()
            reported = ""
            while True:
                await asyncio.sleep(_FOLD_REPORT_SECONDS)
                line = (
                    f"watching failed: {watcher.error}" if watcher.error else _watch_line(watcher)
                )
                if line != reported:
                    print(line, flush=True)
                    reported = line
        finally:
            await watcher.stop()
            await database.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _watch_line(watcher: Watcher) -> str:
    return (
        f"{watcher.crossings:,} crossings found; {watcher.totals.delivered:,} of "
        f"{watcher.totals.attempted:,} webhook attempts delivered"
    )


def _export(args: argparse.Namespace) -> None:
    """The exporter of a server process, alone (or a backfill): a progress bar while a pass
    backfills, then a line per pass that exported anything."""
    from api.export.exporter import exporter_of
    from api.progress import Progress

    settings = Settings.from_env()
    if settings.export_destination is None:
        raise SystemExit(
            "usage-api export: USAGE_EXPORT_URL is not set: give s3://bucket/prefix (with "
            "USAGE_EXPORT_ENDPOINT for a store other than AWS) or file:///path"
        )

    async def run() -> None:
        database = Database(settings.database_url, 2)
        await database.open()
        exporter = exporter_of(database, settings)
        assert exporter is not None
        try:
            if args.since:
                await exporter.backfill_from(args.since)
            while True:
                progress = Progress("Exporting", None)
                if args.once:
                    passed = await exporter.once(progress)
                else:
                    passed = await exporter.attempt(progress)
                if passed is not None and (passed.events or passed.hourly_files or args.once):
                    progress.finish(progress.total or passed.events)
                    print(_export_line(passed), flush=True)
                elif exporter.status.error is None and passed is None:
                    print("another exporter is running", flush=True)
                if args.once:
                    return
                await asyncio.sleep(exporter.backoff())
        finally:
            await database.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _export_line(passed: "Passed") -> str:
    backfilled = passed.backfilled_dates
    days = f"; backfilled {backfilled[0]} to {backfilled[-1]}" if backfilled else ""
    return (
        f"exported {passed.events:,} events in {passed.event_files:,} files and the hourly "
        f"figures of {passed.hourly_dates:,} dates in {passed.hourly_files:,} files{days}"
    )


def _distribute(_: argparse.Namespace) -> None:
    """Each table in its own transaction: run again after an interruption, it carries on
    with the tables not yet distributed."""
    from api.progress import Progress
    from api.storage import distribution

    with psycopg.connect(Settings.from_env().database_url, **connect_kwargs()) as conn:
        if not distribution.citus_present(conn):
            raise SystemExit(
                "usage-api distribute: this database has no Citus: on the coordinator, "
                "CREATE EXTENSION citus and add the workers (citus_add_node) first"
            )
        pending = distribution.pending(conn)
        if not pending:
            print("nothing to do: every table is already distributed")
            return
        rows = {
            placement.table: distribution.row_count(conn, placement.table) for placement in pending
        }
        progress = Progress("distribute", sum(rows.values()) or None)
        moved = 0

        def on_table(placement: distribution.Placement) -> None:
            nonlocal moved
            kind = "distributed on org_id" if placement.distributed else "a reference table"
            progress.finish(moved, f"{placement.table} ({rows[placement.table]:,} rows) -> {kind}")
            moved += rows[placement.table]

        started = time.monotonic()
        done = distribution.distribute(conn, on_table)
        progress.finish(moved, "done")
    print(
        f"distributed {len(done)} tables, {moved:,} rows, in {time.monotonic() - started:.1f} s; "
        "every organization's rows are now on one shard"
    )
