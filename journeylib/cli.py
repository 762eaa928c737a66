"""The ``journeylib`` command line: synth, ingest, report, dashboard, demo, score.

Every sub-command has ``--help``. Failures exit non-zero with one paragraph
that says what failed and what to do; tracebacks are shown only with
``--debug``.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING

from journeylib import __version__
from journeylib.exceptions import JourneyLibError

if TYPE_CHECKING:
    from journeylib.store.sources import SourcesResult

DEMO_CUSTOMERS = 2000
DEMO_SEED = 42


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="DuckDB store (default: $JOURNEYLIB_DB or data/journeylib.duckdb)",
    )


def _store_path(db: Path | None) -> Path:
    from journeylib.store import default_db_path

    return (db or default_db_path()).expanduser().resolve()


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``journeylib synth``: write the synthetic world."""
    from journeylib.datasets import synthesize

    res = synthesize(
        args.out,
        n_customers=args.customers,
        seed=args.seed,
        months=args.months,
        file_format=args.file_format,
    )
    counts = ", ".join(f"{k} {v:,}" for k, v in res.counts.items())
    _out(f"synthetic world written to {res.out_dir}: {counts}")
    _out(f"planted truths: {res.truth_path}")
    if args.format == "vendor":
        from journeylib.datasets.vendor import write_vendor_exports

        vend = write_vendor_exports(res.out_dir, seed=args.seed)
        n = sum(len(v) for v in vend.files.values())
        _out(f"vendor exports written to {vend.out_dir}: {n} files of {len(vend.files)} sources")
        _out(f"load them with: journeylib ingest --config {vend.sources_yaml}")
        _out(f"planted identity outcomes: {vend.truth_path}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run ``journeylib ingest``: load canonical files, vendor exports or a sources.yaml."""
    from journeylib.io.registry import reader_names
    from journeylib.store import Store
    from journeylib.store.ingest import ingest_files, ingest_folder, iter_results_lines
    from journeylib.store.schema import LOADABLE_TABLES

    readers = reader_names()
    kinds = _source_kinds(args)
    if args.config is not None or (args.source in readers and args.folder is None):
        return _ingest_vendor(args)
    if args.folder is None and (args.table is None or not args.files):
        msg = "give a TABLE and one or more FILEs (e.g. `journeylib ingest events events.csv`), or --folder DIR."
        raise JourneyLibError(msg)
    if args.folder is not None and args.table is not None:
        msg = "give either TABLE FILE... or --folder DIR, not both."
        raise JourneyLibError(msg)
    if args.table is not None and args.table not in LOADABLE_TABLES:
        msg = (
            f"unknown table {args.table!r}: give one of {', '.join(LOADABLE_TABLES)} for canonical files, "
            f"or --source NAME with NAME one of {', '.join(readers)} for vendor exports."
        )
        raise JourneyLibError(msg)
    db = _store_path(args.db)
    with Store(db) as store:
        if args.folder is not None:
            results = ingest_folder(
                store, args.folder, source=args.source, force=args.force, source_kinds=kinds, progress=args.progress
            )
        else:
            results = ingest_files(
                store, args.table, args.files, source=args.source, force=args.force, source_kinds=kinds, progress=args.progress
            )
    for line in iter_results_lines(results):
        _out(line)
    _out(f"store: {db}")
    return 0


def _source_kinds(args: argparse.Namespace) -> dict[str, str]:
    """Return the ``--source-kind NAME=KIND`` declarations of the command line (the last one of a name wins)."""
    from journeylib.store.categories import parse_source_kind

    return dict(parse_source_kind(item) for item in getattr(args, "source_kind", None) or [])


def _ingest_vendor(args: argparse.Namespace) -> int:
    """``journeylib ingest --config FILE [--source NAME]`` or ``--source NAME FILE...``."""
    from journeylib.config.sources import SourcesConfig
    from journeylib.store import Store
    from journeylib.store.sources import ingest_source_files, ingest_sources

    if args.folder is not None:
        msg = "--folder loads canonical files; it cannot be combined with --config or a vendor --source."
        raise JourneyLibError(msg)
    files = ([args.table] if args.table is not None else []) + [str(f) for f in args.files]
    db = _store_path(args.db)
    if args.config is not None:
        if files:
            msg = f"--config loads the files listed in {args.config}; do not also give files ({files[0]} ...)."
            raise JourneyLibError(msg)
        cfg = SourcesConfig.from_yaml(args.config)
        only = [args.source] if args.source not in (None, "canonical") else None
        with Store(db) as store:
            result = ingest_sources(
                store, cfg, only=only, force=args.force, source_kinds=_source_kinds(args), progress=args.progress
            )
    else:
        if not files:
            msg = f"give the {args.source} export files: `journeylib ingest --source {args.source} FILE...`."
            raise JourneyLibError(msg)
        with Store(db) as store:
            result = ingest_source_files(
                store, args.source, files, force=args.force, source_kinds=_source_kinds(args), progress=args.progress
            )
    for line in result.lines():
        _out(line)
    _out(f"store: {db}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number of at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _sample_arg(text: str) -> float | int:
    """``--sample``: a share ``0 < x < 1`` (``0.1``) or a whole number of customers ``>= 1`` (``5000``)."""
    from journeylib.reports.plan import resolve_sample

    try:
        value: float | int = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = -1
    try:
        resolve_sample(value, 1)
    except ValueError:
        msg = f"expected a share of the customers between 0 and 1 (e.g. 0.1) or a number of customers of at least 1 (e.g. 5000), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return value


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``journeylib report``: execute a report suite."""
    from journeylib.reports.runner import run_report

    overrides = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            msg = f"--set expects KEY=VALUE, got {item!r}."
            raise JourneyLibError(msg)
        overrides[key] = value
    if args.db is not None and args.engine is not None:
        msg = (
            f"--db {args.db} and --engine {args.engine} are both given; give one: a DuckDB store file (--db) or an "
            "engine.yaml (--engine; an engine.yaml with engine: duckdb names its store in its own db key)."
        )
        raise JourneyLibError(msg)
    run_dir = run_report(
        args.suite,
        # without --db, the suite's db (else JOURNEYLIB_DB, else data/journeylib.duckdb) or its engine applies
        db=_store_path(args.db) if args.db is not None else None,
        engine=args.engine.expanduser().resolve() if args.engine is not None else None,
        out=args.out,
        run_id=args.run_id,
        overrides=overrides or None,
        execution_timeout=args.timeout,
        keep_runs=args.keep,
        sample=args.sample,
        progress=args.progress,
        jobs=args.jobs,
    )
    _out(f"report written to {run_dir}")
    _out(f"open {Path(args.out).resolve() / 'latest' / 'index.html'}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Run ``journeylib dashboard``: serve Voila (on 127.0.0.1 unless ``--ip`` says otherwise)."""
    from journeylib.reports.dashboard import serve_dashboard

    return (
        serve_dashboard(
            args.notebooks,
            port=args.port,
            db=_store_path(args.db),
            notebook=args.notebook,
            ip=args.ip,
            token=True if args.token else None,
            idle_timeout=args.idle_timeout,
            kernel_memory=args.kernel_memory,
            max_kernels=args.max_kernels,
            kernel_pool=args.kernel_pool,
        )
        or 0
    )


#: Output formats of ``journeylib score``, by file extension.
SCORE_FORMATS = (".csv", ".parquet")


def cmd_score(args: argparse.Namespace) -> int:
    """Run ``journeylib score``: train the churn model on the store's history and write every active customer's risk."""
    out = Path(args.out)
    if out.suffix.lower() not in SCORE_FORMATS:
        msg = (
            f"--out {out}: the format is chosen by the file's extension, one of {', '.join(SCORE_FORMATS)}; "
            f"got {out.suffix or 'no extension'!r}. Use e.g. --out risk_scores.csv or --out risk_scores.parquet."
        )
        raise JourneyLibError(msg)
    from journeylib.config.journey import JourneyDefinition
    from journeylib.customers.scoring import RISK_BANDS, score_customers
    from journeylib.store import Store

    definition = JourneyDefinition.load(args.definition)
    try:
        cuts = [float(x) for x in str(args.bands).split(",") if x.strip()]
    except ValueError:
        msg = f"--bands {args.bands!r}: give three increasing probabilities separated by commas, e.g. --bands 0.1,0.25,0.5."
        raise JourneyLibError(msg) from None
    db = _store_path(args.db)
    if not db.exists():
        msg = f"--db {db}: no such store. Give the DuckDB file `journeylib ingest` or `journeylib demo` wrote (or set JOURNEYLIB_DB)."
        raise JourneyLibError(msg)
    with Store(db, read_only=True) as store:
        res = score_customers(store, definition=definition, as_of=args.as_of or None, horizon_days=args.horizon, band_cuts=cuts)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        res.scores.to_csv(out, index=False)
    else:
        res.scores.to_parquet(out, index=False)
    t = res.training
    bands = res.scores["risk_band"].value_counts()
    counts = ", ".join(f"{b} {int(bands.get(b, 0)):,}" for b in reversed(RISK_BANDS))
    _out(f"scored {len(res.scores):,} active customers on {res.as_of - timedelta(days=1):%Y-%m-%d}: "
         f"risk of churn within {res.horizon_days} days by band: {counts}")
    _out(f"model {res.model_version}: trained on {t['snapshots']:,} snapshots of {t['customers']:,} customers "
         f"({t['churned']:,} churned within the horizon, as-of days {t['from']} to {t['to']})")
    _out(f"written to {out}")
    return 0


def build_demo_store(world: Path, db: Path, *, customers: int, seed: int, sources: Path | None = None) -> SourcesResult:
    """Generate (or reuse) the demo world with its vendor exports and ingest them through ``sources.yaml``.

    Parameters
    ----------
    world : pathlib.Path
        Folder of the synthetic world; reused when it holds a world of the
        same seed and size with its vendor exports.
    db : pathlib.Path
        The store to ingest into (created if missing; re-running skips the
        files already loaded).
    customers, seed : int
        Size and seed of the world.
    sources : pathlib.Path, optional
        The ``sources.yaml`` to ingest (default: ``WORLD/vendor/sources.yaml``,
        written with the exports).

    Returns
    -------
    journeylib.store.sources.SourcesResult
        Per-file results and the identity resolution summary.
    """
    import json

    from journeylib.datasets import synthesize
    from journeylib.datasets.vendor import VENDOR_TRUTH_FILE, write_vendor_exports
    from journeylib.store import Store
    from journeylib.store.ingest import ingest_files
    from journeylib.store.sources import ingest_sources

    truth = world / "truth.json"
    fresh = True
    if truth.exists() and (world / "vendor" / VENDOR_TRUTH_FILE).exists():
        try:
            meta = json.loads(truth.read_text())
        except (ValueError, RecursionError) as exc:
            msg = (
                f"{truth} is not a readable truth file ({type(exc).__name__}: {exc}). Delete the folder {world} "
                "(or pass another --world) and run again to generate the demo world anew."
            )
            raise JourneyLibError(msg) from exc
        fresh = not (meta.get("seed") == seed and meta.get("n_customers") == customers)
    if fresh:
        _out(f"1/3 generating the synthetic world ({customers:,} customers, seed {seed}) in {world}, with its vendor exports")
        synthesize(world, n_customers=customers, seed=seed)
        write_vendor_exports(world, seed=seed)
    else:
        _out(f"1/3 synthetic world and vendor exports already in {world} (seed {seed}); reusing them")
    config = sources or world / "vendor" / "sources.yaml"
    _out(f"2/3 ingesting the vendor exports of {config} into {db}")
    experiments = world / "vendor" / "experiments" / "assignments.csv"
    with Store(db) as store:
        result = ingest_sources(store, config)
        loaded = ingest_files(store, "assignments", [experiments], source="experiments") if experiments.exists() else []
    for line in result.lines():
        _out("    " + line)
    for r in loaded:
        _out("    " + r.summary())
    return result


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``journeylib demo``: synthesize, write vendor exports, ingest them through ``sources.yaml``, report."""
    from journeylib.datasets.vendor import VENDOR_TRUTH_FILE
    from journeylib.reports.runner import run_report

    world = Path(args.world)
    db = _store_path(args.db)
    build_demo_store(world, db, customers=args.customers, seed=args.seed, sources=Path(args.sources) if args.sources else None)
    _out(f"3/3 running the report suite {args.suite}")
    run_dir = run_report(args.suite, db=db, out=args.out)
    _out("")
    _out(f"Report: {Path(args.out).resolve() / 'latest' / 'index.html'}  (run {run_dir.name})")
    _out(f"Truths planted in the demo world: {(world / 'truth.json').resolve()} and {(world / 'vendor' / VENDOR_TRUTH_FILE).resolve()}")
    _out("Dashboard: `make dashboard` (or `journeylib dashboard`), then open http://127.0.0.1:8866/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``journeylib`` command."""
    from journeylib.io.registry import reader_names

    parser = argparse.ArgumentParser(
        prog="journeylib",
        description="Customer journey mapping from the exports of the tools a Customer Success team already has.",
    )
    parser.add_argument("--version", action="version", version=f"journeylib {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on failure")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("synth", help="generate the seeded synthetic SaaS world (canonical files + truth.json)")
    p.add_argument("--customers", type=int, default=DEMO_CUSTOMERS, help="number of accounts (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help="random seed (default %(default)s)")
    p.add_argument("--months", type=int, default=12, help="months of signups (default %(default)s)")
    p.add_argument("--file-format", choices=["parquet", "csv"], default="parquet", help="file format (default %(default)s)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--format",
        choices=["canonical", "vendor"],
        default="canonical",
        help="canonical tables only, or also vendor-format exports in OUT/vendor/ with a sources.yaml (default %(default)s)",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "ingest",
        help="load canonical CSV/Parquet/JSON Lines files into the store",
        description=(
            "Load canonical files (columns named as in the data contract), vendor exports (--source NAME FILE...) "
            "or everything a sources.yaml lists (--config FILE) into the store. "
            "Bad rows are quarantined with a reason; every file reconciles read = loaded + "
            "duplicate + quarantined; a file already ingested (same sha256) is skipped."
        ),
    )
    _db_arg(p)
    p.add_argument("table", nargs="?", metavar="TABLE", help="canonical table: customers, users, events, tickets, messages or assignments")
    p.add_argument("files", nargs="*", type=Path, help="files to load (.csv, .parquet, .jsonl; or vendor exports with --source)")
    p.add_argument(
        "--folder",
        type=Path,
        help="load every canonical file of a folder (as written by `journeylib synth`); every other file is named with the reason it was not read",
    )
    p.add_argument(
        "--source",
        default="canonical",
        help=(
            f"a vendor reader ({', '.join(reader_names())}): "
            "then every positional argument is an export file of that vendor, in any order; with --config, load only "
            "that source; otherwise the source label of canonical files (default %(default)s)"
        ),
    )
    p.add_argument("--config", type=Path, default=None, help="a sources.yaml: load every vendor source it lists, then resolve identities")
    p.add_argument("--force", action="store_true", help="re-read files whose content was already ingested")
    p.add_argument(
        "--source-kind",
        action="append",
        metavar="NAME=KIND",
        help=(
            "the kind of the event source NAME: product (customer activity), crm, support or email (repeatable; "
            "over sources.yaml's source_kinds). A source not declared takes its vendor reader's kind, else its "
            "name's (product, crm, support, email), else product; the summary prints the kind of every new source"
        ),
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar over the files on stderr (default: only when stderr is a terminal)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("report", help="run a report suite with Papermill into reports/<run-id>/")
    _db_arg(p)
    p.add_argument(
        "--engine",
        type=Path,
        default=None,
        metavar="ENGINE_YAML",
        help="run every notebook on the store an engine.yaml describes (engine: spark with its tables, or engine: duckdb); not with --db (docs/spark.md)",
    )
    p.add_argument("--suite", type=Path, default=Path("parameters/demo.yaml"), help="suite file (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (default %(default)s)")
    p.add_argument("--run-id", default=None, help="run id (default: UTC time and suite name)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a shared parameter (repeatable)")
    p.add_argument("--timeout", type=int, default=600, help="per-cell execution timeout in seconds (default %(default)s)")
    p.add_argument(
        "--keep",
        type=_positive_int,
        default=None,
        metavar="N",
        help="keep the N newest runs of the suite, delete older ones (never the run `latest` points at); default: the suite's keep_runs, else all",
    )
    p.add_argument(
        "--sample",
        type=_sample_arg,
        default=None,
        metavar="X",
        help="run every notebook on one seeded random sample of customers: a share (0.1) or a number of customers (5000); stated in each report",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar over the notebooks on stderr (default: only when stderr is a terminal)",
    )
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run N notebooks side by side, each in its own kernel (default: the CPUs, at most 4; 1 runs them in turn)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("dashboard", help="serve the notebooks as Voila dashboards on 127.0.0.1")
    _db_arg(p)
    p.add_argument("--port", type=int, default=8866, help="port (default %(default)s)")
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="notebooks folder (default %(default)s)")
    p.add_argument("--notebook", default=None, help="serve only this notebook (e.g. 00_data_health)")
    p.add_argument(
        "--ip",
        default="127.0.0.1",
        help="interface to listen on (default %(default)s); any other (e.g. 0.0.0.0) requires a token",
    )
    p.add_argument(
        "--token",
        action="store_true",
        help="require a token on 127.0.0.1 too: $JOURNEYLIB_DASHBOARD_TOKEN, else a generated one (printed)",
    )
    p.add_argument(
        "--idle-timeout",
        type=int,
        default=600,
        help="seconds before an idle kernel (even with its page open) is shut down (default %(default)s)",
    )
    p.add_argument(
        "--kernel-memory",
        default="3GiB",
        help="bound on each page's kernel's private memory, e.g. 2GiB or 1500MB; 'none' or 0: no bound "
        "(default %(default)s; a cell that needs more fails with an error on its page)",
    )
    p.add_argument(
        "--max-kernels",
        type=int,
        default=None,
        help="most kernels (open pages) at once; more get 'too many pages open' (HTTP 503); 0: no bound "
        "(default: as many bounded kernels as fit in 75%% of the machine's memory)",
    )
    p.add_argument(
        "--kernel-pool",
        type=int,
        default=1,
        help="warm kernels kept started, with the notebooks' modules imported, so a page does not wait for its "
        "kernel to start (each holds about 300-400 MB while it waits; 0: none; default 1)",
    )
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser(
        "score",
        help="score every active customer's churn risk with reasons and write a CSV or Parquet table",
        description=(
            "Train the calibrated churn model on the store's history (weekly as-of snapshots whose horizon closed by the "
            "as-of day) and score every active paying customer on the as-of day: customer_id, name, segment, stage, risk, "
            "risk_band, risk_change_7d, reasons, next_stage with its probability, model_version. See docs/churn-risk.md."
        ),
    )
    _db_arg(p)
    p.add_argument("--as-of", default=None, help="the day scored, YYYY-MM-DD (default: the day of the latest event)")
    p.add_argument("--horizon", type=int, default=60, help="risk of churn within this many days (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("risk_scores.csv"), help="output file, .csv or .parquet (default %(default)s)")
    p.add_argument(
        "--definition", type=Path, default=Path("parameters/journeys/saas.yaml"), help="journey definition YAML (default %(default)s)"
    )
    p.add_argument(
        "--bands", default="0.1,0.25,0.5",
        help="cut points of the risk bands low / medium / high / very high (default %(default)s)",
    )
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("demo", help="generate the demo world, ingest it and run the demo report suite")
    _db_arg(p)
    p.add_argument("--world", type=Path, default=Path("data/demo"), help="where the synthetic world goes (default %(default)s)")
    p.add_argument("--customers", type=int, default=DEMO_CUSTOMERS, help="accounts (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help="seed (default %(default)s)")
    p.add_argument("--sources", type=Path, default=None, help="sources.yaml to ingest (default: WORLD/vendor/sources.yaml, written with the world)")
    p.add_argument("--suite", type=Path, default=Path("parameters/demo.yaml"), help="suite (default %(default)s)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="reports folder (default %(default)s)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "alerts",
        help="evaluate alert rules as of a day, record the alerts once per cooldown, write the CSM worklist",
        description=(
            "Evaluate the rules of an alert-rule file (docs/alerts.md) on every customer as of a day, explain each alert "
            "(conditions that held, the customer's values, the peer reference, risk reasons), give it its playbook, "
            "holdout flag and owner, and record it in the store's alert_history table: the same rule is never raised "
            "twice for a customer within its cooldown, across re-runs and crashes."
        ),
    )
    _db_arg(p)
    p.add_argument("--rules", type=Path, default=None, help="alert-rule file (e.g. parameters/alerts/saas.yaml); required unless --redeliver")
    p.add_argument("--as-of", default=None, help="the as-of day, YYYY-MM-DD, read up to its end (default: the day of the latest event)")
    p.add_argument("--dry-run", action="store_true", help="evaluate and list the alerts; write nothing to the store")
    p.add_argument(
        "--out", action="append", metavar="FILE",
        help="write the worklist (company, owner, severity, why, next step) to FILE, .csv or .json (repeatable)",
    )  # fmt: skip
    p.add_argument("--risk", type=Path, default=None, help="risk table of `journeylib score` (.csv, .parquet, .json); without it risk conditions are not checked")
    p.add_argument("--definition", type=Path, default=None, help="journey definition (default: the rule file's journey)")
    p.add_argument(
        "--deliver", type=Path, default=None, metavar="ENDPOINTS",
        help="send the run's alerts to the webhook endpoints of this delivery file (docs/delivery.md): each delivered once or "
        "dead-lettered; exits 1 when any was dead-lettered",
    )  # fmt: skip
    p.add_argument("--redeliver", action="store_true", help="send the dead letters of the --deliver endpoints again (no rules evaluated)")
    p.set_defaults(func=cmd_alerts)
    return parser


def cmd_alerts(args: argparse.Namespace) -> int:
    """Run ``journeylib alerts``: evaluate the alert rules as of a day, record the alerts once, write the CSM worklist."""
    from datetime import UTC, datetime

    from journeylib.actions.alerts import raise_alerts, write_worklist
    from journeylib.actions.delivery import deliver_alerts, redeliver
    from journeylib.config.delivery import DeliveryConfig
    from journeylib.store import Store

    outs = [Path(o) for o in args.out or []]
    bad = [str(o) for o in outs if o.suffix.lower() not in (".csv", ".json")]
    if bad:
        msg = f"--out {bad[0]}: the worklist is written as .csv or .json, chosen by the extension; got {Path(bad[0]).suffix or 'no extension'!r}."
        raise JourneyLibError(msg)
    if args.redeliver and not args.deliver:
        msg = "--redeliver sends the dead letters again to the endpoints of a delivery file: give it with --deliver ENDPOINTS.yaml."
        raise JourneyLibError(msg)
    if args.rules is None and not args.redeliver:
        msg = "--rules FILE is required (an alert-rule file such as parameters/alerts/saas.yaml), unless --redeliver is given."
        raise JourneyLibError(msg)
    if args.deliver and args.dry_run:
        msg = "--deliver records every delivery in the store; it cannot run with --dry-run. Drop one of them."
        raise JourneyLibError(msg)
    endpoints = DeliveryConfig.from_yaml(args.deliver) if args.deliver else None  # checked before any work
    db = _store_path(args.db)
    if not db.exists():
        msg = f"--db {db}: no such store. Give the DuckDB file `journeylib ingest` or `journeylib demo` wrote (or set JOURNEYLIB_DB)."
        raise JourneyLibError(msg)
    if args.redeliver and endpoints is not None:
        with Store(db) as store:
            again = redeliver(store, endpoints)
        _out(f"redelivery: {again.summary()}")
        return 1 if again.dead_lettered else 0
    with Store(db, read_only=args.dry_run) as store:
        run = raise_alerts(
            store, args.rules, as_of=args.as_of or None, raised_at=datetime.now(UTC), dry_run=args.dry_run,
            risk=args.risk, definition=args.definition,
        )  # fmt: skip
        report = deliver_alerts(store, run.alerts, endpoints) if endpoints is not None else None
    for line in run.lines():
        _out(line)
    for o in outs:
        _out(f"worklist written to {write_worklist(run.alerts, o)}")
    if not args.dry_run:
        _out(f"alert history: {db} (table alert_history)")
    if report is not None:
        _out(f"delivery: {report.summary()}")
        if report.dead_lettered:  # a scheduler must see it; `--redeliver` sends them again
            return 1
    return 0


#: Names of local variables that hold the file a failing function was working on (see :func:`failure_message`).
_FILE_LOCALS = ("path", "p", "file", "filename", "config", "suite", "source_path")


def _store_errors() -> ModuleType | None:
    """Return :mod:`journeylib.store.errors`, or None if it cannot be imported (a broken install must not hide the error)."""
    try:
        from journeylib.store import errors
    except Exception:
        return None
    return errors


def _in_journeylib(frame: FrameType) -> bool:
    spec = frame.f_globals.get("__spec__")
    name = getattr(spec, "name", None) or frame.f_globals.get("__name__", "")
    return str(name).startswith("journeylib.")


def _is_file(value: object) -> bool:
    try:
        return isinstance(value, (str, Path)) and bool(str(value)) and Path(value).is_file()
    except (OSError, ValueError):
        return False


def _file_in_traceback(exc: BaseException) -> str | None:
    """Return the file the innermost journeylib function was working on when *exc* was raised, if it can tell.

    Looked at, in its local variables: the usual names of a file (``path``,
    ``p``, ``file``, ``*_path``, ...) and, for a JSON error, the file whose
    text is the document that failed to decode.
    """
    frame = None
    tb = exc.__traceback__
    while tb is not None:
        if _in_journeylib(tb.tb_frame):
            frame = tb.tb_frame
        tb = tb.tb_next
    if frame is None:
        return None
    local = {k: v for k, v in frame.f_locals.items() if _is_file(v)}
    named = [str(v) for k, v in local.items() if k in _FILE_LOCALS or k.endswith("_path")]
    if named:
        return named[0]
    if isinstance(exc, json.JSONDecodeError):
        for value in local.values():
            try:
                if Path(value).stat().st_size < 64_000_000 and Path(value).read_text(encoding="utf-8", errors="replace") == exc.doc:
                    return str(value)
            except OSError:
                continue
    return None


def _inputs(args: argparse.Namespace) -> str:
    """Return the files and folders given to the command, for messages that cannot name the one that failed."""
    given = [getattr(args, name, None) for name in ("config", "suite", "sources", "folder", "world")]
    table = getattr(args, "table", None)
    given += [table] if _is_file(table) else []  # a vendor export given first, not a table name
    given += list(getattr(args, "files", None) or [])
    names = [str(g) for g in given if g]
    if not names:
        return "its inputs"
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def _raised_in_journeylib(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame
        tb = tb.tb_next
    return last is not None and _in_journeylib(last)


def failure_message(args: argparse.Namespace, exc: BaseException) -> str:
    """Return the one-paragraph error the command line prints for *exc*: what failed, where, what to do.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (``args.command`` names the sub-command).
    exc : BaseException
        What the sub-command raised.

    Returns
    -------
    str
        ``"journeylib COMMAND: error: ..."`` (or ``internal error`` for an
        exception that is a bug), without a trailing newline. A follow-up
        "transaction aborted" error is described by its first cause, and
        DuckDB's lock, memory, disk-full and I/O errors by
        :func:`journeylib.store.errors.translate_error`.
    """
    cmd = f"journeylib {getattr(args, 'command', None) or ''}".rstrip()
    errors = _store_errors()
    if errors is not None:
        exc = errors.first_cause(exc)
    if isinstance(exc, JourneyLibError):
        return f"{cmd}: error: {exc}"
    store = None
    if getattr(args, "db", None) is not None or getattr(args, "command", None) in ("ingest", "report", "dashboard", "demo"):
        try:
            store = _store_path(getattr(args, "db", None))
        except Exception:
            store = None
    if errors is not None and errors.is_engine_error(exc):
        translated = errors.translate_error(exc, path=store)
        if translated is not None:
            return f"{cmd}: error: {translated}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f" on store {store}" if store is not None else ""
        return (
            f"{cmd}: error: the database engine (DuckDB) failed{where}: {first}. If the message does not point at "
            f"something in your input ({_inputs(args)}), run again with `journeylib --debug {args.command} ...` "
            "for the traceback and report it."
        )
    file = _file_in_traceback(exc)
    reading = f"while reading {file}" if file else f"while reading {_inputs(args)}"
    debug = f"`journeylib --debug {args.command} ...` shows the traceback"
    if isinstance(exc, json.JSONDecodeError):
        near = exc.doc[max(exc.pos - 20, 0) : exc.pos + 20].replace("\n", " ").strip()
        return (
            f"{cmd}: error: invalid JSON {reading}: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            f"{f' (near {near!r})' if near else ''}. Fix or export the file again, then run again ({debug})."
        )
    if isinstance(exc, RecursionError):
        return (
            f"{cmd}: error: the input is nested too deeply to process {reading} (Python's recursion limit was reached). "
            "This is usually a JSON or YAML value nested hundreds of levels deep, or a configuration that refers to "
            f"itself. Check that input and run again; if it looks right, report it ({debug})."
        )
    if isinstance(exc, MemoryError):
        return (
            f"{cmd}: error: out of memory {reading}: Python could not allocate more memory. Close other programs, "
            "load fewer or smaller files at a time, or lower DuckDB's share with JOURNEYLIB_MEMORY_LIMIT "
            "(e.g. JOURNEYLIB_MEMORY_LIMIT=1GB), then run again."
        )
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"{cmd}: error: cannot decode the text {reading} as {exc.encoding}: {exc.reason} at byte {exc.start}. "
            "Save or export the file as UTF-8, then run again."
        )
    if isinstance(exc, UnicodeError):
        return (
            f"{cmd}: error: cannot encode or decode text {reading}: {exc}. Use UTF-8 files and a UTF-8 terminal "
            "(e.g. PYTHONIOENCODING=utf-8), then run again."
        )
    if isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else file
        target = f" {name}" if name is not None else ""
        if exc.errno == errno.ENOSPC:
            return (
                f"{cmd}: error: disk full: cannot write{target}: no space left on the device. Free space on that disk, "
                "or write somewhere else (--out, --db or JOURNEYLIB_DB), then run again."
            )
        if exc.strerror and name is not None:
            return (
                f"{cmd}: error: cannot access {name}: {exc.strerror}. Check that the path exists and that you may "
                "read (or write) it, then run again."
            )
        return f"{cmd}: error: {exc}"
    if isinstance(exc, (ValueError, TypeError)):
        if isinstance(exc, ValueError) and _raised_in_journeylib(exc):
            return f"{cmd}: error: {exc}"
        return (
            f"{cmd}: error: {type(exc).__name__} {reading}: {exc}. Check that input and the command's arguments, "
            f"then run again; if they look right, report it ({debug})."
        )
    return (
        f"{cmd}: internal error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else '(no message)'}. "
        f"This is a bug in journeylib, not a problem with your input: please report it ({debug})."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    A failure prints one paragraph (:func:`failure_message`) on stderr and
    returns 1; ``journeylib --debug COMMAND`` raises it instead, with its
    traceback. An interrupt returns 130.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        try:
            text = failure_message(args, exc)
        except Exception:  # describing the failure must never end in a traceback
            text = f"journeylib {args.command}: error: {type(exc).__name__}: {exc}. Run again with `journeylib --debug {args.command} ...` for the traceback."
        sys.stderr.write(text + "\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
