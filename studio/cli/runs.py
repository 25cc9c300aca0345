"""`runs list|show|compare|export|delete` and `db move-aside`: saved runs, read from storage."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from storage import RUN_STATUSES, RunFilter
from studio import usecases
from studio.cli.options import OneLineErrorParser, db_url, print_out
from studio.present.runs import comparison_text, run_text, runs_text


def add_runs_commands(commands, common: argparse.ArgumentParser) -> None:
    runs = commands.add_parser("runs", parents=[common], help="list, show, compare, export and delete saved runs")
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=OneLineErrorParser, required=True)

    listing = actions.add_parser("list", parents=[common], help="saved runs, newest first")
    listing.add_argument("--model", help="a model's path fragment or sha256 prefix")
    listing.add_argument("--device", help="e.g. cpu or cuda:0")
    listing.add_argument("--status", choices=RUN_STATUSES)
    listing.add_argument("--tag")
    listing.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="started on or after this day (UTC)")
    listing.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="started before this day (UTC)")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_runs_list)

    show = actions.add_parser("show", parents=[common], help="one run: settings, summary, energy, environment")
    show.add_argument("run_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_runs_show)

    compare = actions.add_parser("compare", parents=[common], help="2-8 runs side by side; the first is the baseline")
    compare.add_argument("run_ids", type=int, nargs="+", metavar="ID")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=_runs_compare)

    export = actions.add_parser("export", parents=[common], help="a run with its raw samples, as CSV or JSON")
    export.add_argument("run_id", type=int, metavar="ID")
    export.add_argument("--format", choices=("csv", "json"), required=True)
    export.add_argument("-o", "--output", required=True, metavar="PATH")
    export.set_defaults(handler=_runs_export)

    delete = actions.add_parser("delete", parents=[common], help="a run and all its samples")
    delete.add_argument("run_id", type=int, metavar="ID")
    delete.set_defaults(handler=_runs_delete)

    database = commands.add_parser("db", parents=[common], help="manage the runs database")
    database_commands = database.add_subparsers(dest="db_command", metavar="ACTION", parser_class=OneLineErrorParser,
                                                required=True)
    aside = database_commands.add_parser("move-aside", parents=[common],
                                         help="rename a damaged SQLite database (it is kept, never deleted)")
    aside.set_defaults(handler=_db_move_aside)
    imported = database_commands.add_parser("import-unsaved", parents=[common],
                                            help="save a run from its JSON export (what bench wrote when saving "
                                            "failed, or runs export --format json)")
    imported.add_argument("file", metavar="FILE.json")
    imported.set_defaults(handler=_db_import_unsaved)


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _runs_list(args: argparse.Namespace) -> int:
    run_filter = RunFilter(model=args.model, device=args.device, status=args.status, tag=args.tag,
                           started_after=args.since, started_before=args.until)
    page = usecases.list_runs(db_url(args), run_filter, offset=args.offset, limit=args.limit)
    if args.json:
        print_out(json.dumps({"total": page.total, "offset": args.offset, "runs": [r.to_dict() for r in page.runs]}, indent=2))
    else:
        print_out(runs_text(page, args.offset))
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    data = usecases.load_run(db_url(args), args.run_id)
    if args.json:
        print_out(json.dumps({**data.record.to_dict(), "latency_samples": int(data.latency.latencies_ns.size)}, indent=2))
    else:
        print_out(run_text(data))
    return 0


def _runs_compare(args: argparse.Namespace) -> int:
    comparison = usecases.compare_runs(db_url(args), args.run_ids)
    print_out(json.dumps(comparison.to_dict(), indent=2) if args.json else comparison_text(comparison))
    return 0


def _runs_export(args: argparse.Namespace) -> int:
    exported = usecases.export_run(db_url(args), args.run_id, args.output, args.format)
    unrecorded = "" if exported.recorded else "; the database is read-only, so the export is not recorded in it"
    print_out(f"run {args.run_id} written to {exported.path} ({exported.size_bytes:,} bytes, sha256 "
              f"{exported.sha256[:12]}){unrecorded}")
    return 0


def _runs_delete(args: argparse.Namespace) -> int:
    usecases.delete_run(db_url(args), args.run_id)
    print_out(f"run {args.run_id} deleted with its samples")
    return 0


def _db_import_unsaved(args: argparse.Namespace) -> int:
    record = usecases.import_run_file(db_url(args), args.file)
    print_out(f"imported as run {record.id} ({record.status}, {record.latency_count:,} latency samples)")
    return 0


def _db_move_aside(args: argparse.Namespace) -> int:
    moved = usecases.move_store_aside(db_url(args))
    print_out(f"the damaged database was moved to {moved}; a new one is created on next use")
    return 0
