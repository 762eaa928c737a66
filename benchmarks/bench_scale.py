"""Scale benchmark: journeylib as whole processes against hand-written DuckDB SQL (and retentioneering 5).

Run with ``python benchmarks/bench_scale.py`` (``make bench``): synthetic event
logs of about 1M and 10M events (``--sizes 1M,10M``; ``100M`` is opt-in), each
generated once with :func:`journeylib.datasets.synthesize` (about 124 events per
customer, so a size of N events is a world of ``N / 124`` customers) and
loaded into a journeylib store; both are cached under ``--cache`` (default
``benchmarks/.cache``, git-ignored) and reused by later runs.

Every measurement is a child process of its own, timed from its start to the
moment its result is in memory (so interpreter start-up and imports count;
the digest printed afterwards does not), with its own peak RSS
(``os.wait4`` of that child) and its peak DuckDB spill: each child gets a
private DuckDB ``temp_directory`` (``$JOURNEYLIB_TEMP_DIRECTORY``; the
baselines set the same), whose size is sampled while it runs. Each runs
``--runs`` times (default 3), sizes above 12M events ``--runs-large`` times:
the median and the spread (max - min) are reported. A child that fails (out
of memory, say) does not stop the run: its row keeps the failure
(``journeylib_error``, with how long it ran and its peak RSS and spill), and
``--resume`` measures only what an earlier run in ``--out`` lacks. The
baselines' memory limit can be set apart (``--baseline-memory-limit``: a
100M-event baseline under DuckDB's default of 80% of the RAM can take most of
a shared machine). Beside each journeylib
operation, in the same run and on the same store file, a hand-written DuckDB
SQL baseline runs the same way; both print a digest (row count and a checksum
of the key figures), and ``same_result`` says whether they agree.

Operations (definition ``parameters/journeys/saas.yaml``; the baselines spell
its rules out by hand, see ``benchmarks/bench_journey.py``):

``milestones``, ``funnel``, ``transitions``, ``sessions``
    As in ``bench_journey.py`` (stage met/entered times per customer; reached,
    eligible and dropped per stage; top-10 event transitions with start and end
    nodes; 30-minute sessions per customer).
``features``
    :func:`journeylib.customers.features.build_features` with a 30-day window
    (sub-windows 7/14/30) against two hand-written statements that compute every
    figure of the table: events per customer, event and sub-window with the first
    day, and per customer the active days, 30-minute sessions (and the halves of
    the window), e-mails by status, tickets and users (the digest: customers with
    a complete window, behaviour events, the total count per sub-window, the sum
    of first-event days, and the sum of every per-customer column).
``five_together``
    The five operations above in one process through the analysis context
    (:class:`journeylib.Journey`), against the sum of the five baselines.
``report_01``
    Every computation of ``notebooks/01_journey_map.ipynb`` through the
    analysis context (no charts, no Papermill); no baseline.
``score``
    ``journeylib score`` on the store (every active paying customer); no baseline.

retentioneering 5, when ``--retentioneering-python`` names an interpreter that
can import it, is measured the same way (one run each, up to
``--retentioneering-max-events``) for the operations it has: a funnel of five
milestone events, the event transition matrix, 30-minute sessions. Its results
are not checked against journeylib's: its funnel counts events in order, not
the definition's rules, and its transition matrix has no start or end nodes.
Besides the whole processes, ``journeylib_after_imports_s`` and
``retentioneering_after_imports_s`` time each child from the end of its imports
to its result (journeylib: opening the store, reading the definition, the call;
retentioneering: reading the events from the store, building its Eventstream,
the call), and ``ratio_vs_retentioneering_after_imports`` compares them: at 1M
events importing retentioneering alone takes longer than journeylib's whole
process, so this column tells the work from the imports. The targets are
checked on the whole processes.

Results: ``benchmarks/results/scale.json`` and ``scale.md`` (``--out``), with
the machine (cores, RAM, load average at every measurement), the ratios to the
baseline, and the cost per event from one size to the next (linearity).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_journey  # noqa: E402  (the verified hand-written baselines of the journey map)

DEFINITION = ROOT / "parameters" / "journeys" / "saas.yaml"
EVENTS_PER_CUSTOMER = 124  # the synthetic world's mean, measured at 10k and 100k customers
SIZE_UNITS = {"k": 1_000, "m": 1_000_000}
OPERATIONS = ("milestones", "funnel", "transitions", "sessions", "features", "five_together", "report_01", "score")
FIVE = ("milestones", "funnel", "transitions", "sessions", "features")
RESULT_COLUMNS = (
    "size", "events", "customers", "operation", "runs",
    "journeylib_s", "journeylib_spread_s", "journeylib_rss_mib",
    "baseline_s", "baseline_spread_s", "baseline_rss_mib", "ratio_vs_baseline", "same_result",
    "retentioneering_s", "retentioneering_rss_mib", "ratio_vs_retentioneering",
    "journeylib_after_imports_s", "retentioneering_after_imports_s", "ratio_vs_retentioneering_after_imports",
    "journeylib_ns_per_event", "journeylib_spill_mib", "baseline_spill_mib", "load_average", "journeylib_error",
)
#: Sizes above this many events are "large": they run ``--runs-large`` times (a 100M-event run takes minutes).
LARGE_EVENTS = 12_000_000
#: How often (seconds) a child's private DuckDB temp directory is measured for spilled bytes.
SPILL_POLL_SECONDS = 0.1

# -- the features baseline: every figure of the feature table, hand-written --------------------------
# Two statements, as a DuckDB user would write them: events per customer, event and sub-window with the
# first day (long: one row per customer and event, the table's n_<e>_<d>d and first_<e>_days before the
# pivot), and one row per customer with the activity days, 30-minute sessions (count and the two halves
# of the window), e-mails by status per send_id, tickets and users (the table's other columns). The
# demo store's activity source is 'product' and its commercial source 'crm' (build_features finds them
# from the store's source kinds).
FEATURES_CW = """cw AS (SELECT customer_id, signup_at, signup_at + INTERVAL 30 DAY AS window_end FROM customers
            WHERE signup_at <= $asof AND signup_at + INTERVAL 30 DAY <= $asof)"""
FEATURES_SQL = (
    f"""
WITH {FEATURES_CW},
e AS (SELECT e.customer_id, e.event, e.source, (epoch(e.timestamp) - epoch(cw.signup_at)) / 86400 AS t
      FROM events e JOIN cw USING (customer_id)
      WHERE e.timestamp >= cw.signup_at AND e.timestamp < cw.window_end),
keep AS (SELECT event FROM e GROUP BY event HAVING bool_or(source <> 'crm'))
SELECT customer_id, event, count(*) FILTER (WHERE t < 7) AS n7, count(*) FILTER (WHERE t < 14) AS n14,
       count(*) FILTER (WHERE t < 30) AS n30, min(t) AS first_days
FROM e SEMI JOIN keep USING (event) GROUP BY customer_id, event
""",
    f"""
WITH {FEATURES_CW},
a AS (SELECT e.customer_id, e.timestamp, (epoch(e.timestamp) - epoch(cw.signup_at)) / 86400 AS t
      FROM events e JOIN cw USING (customer_id)
      WHERE e.source = 'product' AND e.timestamp >= cw.signup_at AND e.timestamp < cw.window_end),
g AS (SELECT customer_id, t, epoch(timestamp) - lag(epoch(timestamp)) OVER (PARTITION BY customer_id ORDER BY timestamp) AS gap FROM a),
ss AS (SELECT customer_id, count(DISTINCT floor(t)) AS days_active, count(*) FILTER (WHERE gap IS NULL OR gap > 1800) AS sessions,
              count(*) FILTER (WHERE (gap IS NULL OR gap > 1800) AND t < 15) AS s1,
              count(*) FILTER (WHERE (gap IS NULL OR gap > 1800) AND t >= 15) AS s2
       FROM g GROUP BY customer_id),
m AS (SELECT cw.customer_id, m.message_id, m.status, json_extract_string(m.properties, '$.send_id') AS send
      FROM messages m JOIN cw USING (customer_id) WHERE m.timestamp >= cw.signup_at AND m.timestamp < cw.window_end),
per_email AS (SELECT customer_id, coalesce('send:' || send, 'row:' || message_id) AS email,
                     bool_or(status = 'delivered' OR (send IS NOT NULL AND status IN ('opened', 'clicked'))) AS delivered,
                     bool_or(status = 'opened' OR (send IS NOT NULL AND status = 'clicked')) AS opened,
                     bool_or(status = 'clicked') AS clicked, bool_or(status = 'unsubscribed') AS unsubscribed
              FROM m GROUP BY 1, 2),
ms AS (SELECT customer_id, count(*) FILTER (WHERE delivered) AS delivered, count(*) FILTER (WHERE opened) AS opened,
              count(*) FILTER (WHERE clicked) AS clicked, count(*) FILTER (WHERE unsubscribed) AS unsubscribed
       FROM per_email GROUP BY 1),
tk AS (SELECT customer_id, count(*) AS tickets, count(*) FILTER (WHERE lower(priority) IN ('high', 'urgent')) AS high_priority,
              avg(satisfaction) FILTER (WHERE solved_at < window_end) AS satisfaction
       FROM tickets t JOIN cw USING (customer_id) WHERE t.created_at >= cw.signup_at AND t.created_at < cw.window_end GROUP BY 1),
us AS (SELECT customer_id, count(*) AS users FROM users u JOIN cw USING (customer_id)
       WHERE u.created_at IS NULL OR u.created_at < cw.window_end GROUP BY 1)
SELECT cw.customer_id, c.segment, c.plan, cw.signup_at, cw.window_end,
       coalesce(ss.days_active, 0) AS days_active, coalesce(ss.sessions, 0) AS sessions,
       coalesce(ss.s2, 0) - coalesce(ss.s1, 0) AS sessions_trend,
       coalesce(ms.delivered, 0) AS delivered, coalesce(ms.opened, 0) AS opened, coalesce(ms.clicked, 0) AS clicked,
       coalesce(ms.unsubscribed, 0) AS unsubscribed, coalesce(tk.tickets, 0) AS tickets,
       coalesce(tk.high_priority, 0) AS high_priority, tk.satisfaction, coalesce(us.users, 0) AS users
FROM cw JOIN customers c USING (customer_id) LEFT JOIN ss USING (customer_id) LEFT JOIN ms USING (customer_id)
     LEFT JOIN tk USING (customer_id) LEFT JOIN us USING (customer_id)
ORDER BY cw.customer_id
""",
)
#: The per-customer figures of the digest: journeylib's column (30-day window) → the baseline's.
FEATURES_PER_CUSTOMER = {
    "days_active_30d": "days_active", "sessions_30d": "sessions", "emails_delivered_30d": "delivered",
    "emails_opened_30d": "opened", "emails_clicked_30d": "clicked", "emails_unsubscribed_30d": "unsubscribed",
    "tickets_30d": "tickets", "tickets_high_priority_30d": "high_priority", "users_30d": "users",
}
DIGEST_FEATURES_JL = (
    "import numpy as np\n"
    "d = out.data\n"
    "names = out.catalog.loc[out.catalog.kind == 'first_days', 'feature'].tolist()\n"
    "dig = [int(len(d)), len(names)] + [int(sum(d[f'n_{n[6:-5]}_{w}d'].sum() for n in names)) for w in (7, 14, 30)]"
    " + [round(float(np.nansum(d[names].to_numpy())), 3)]"
    f" + [int(d[c].sum()) for c in {list(FEATURES_PER_CUSTOMER)!r}]"
    " + [int(round(float((d['sessions_trend_30d'] * 15 / 7).sum()))), round(float(d['ticket_satisfaction_30d'].sum()), 6)]\n"
    "out = d"
)
DIGEST_FEATURES_BASE = (
    "long, per = outs\n"
    "dig = [int(len(per)), int(long.event.nunique())] + [int(long[c].sum()) for c in ('n7', 'n14', 'n30')]"
    " + [round(float(long.first_days.sum()), 3)]"
    f" + [int(per[c].sum()) for c in {list(FEATURES_PER_CUSTOMER.values())!r}]"
    " + [int(per.sessions_trend.sum()), round(float(per.satisfaction.sum()), 6)]\n"
    "out = per"
)
BASELINES: dict[str, str | tuple[str, ...]] = {
    **bench_journey.BASELINES, "features": tuple(q.replace("$asof", "CAST($asof AS TIMESTAMPTZ)") for q in FEATURES_SQL),
}
DIGEST_JOURNEYLIB = {**bench_journey.DIGEST_JOURNEYLIB, "features": DIGEST_FEATURES_JL}
DIGEST_BASELINE = {**bench_journey.DIGEST_BASELINE, "features": DIGEST_FEATURES_BASE}

JOURNEYLIB_CALLS = {
    "milestones": ("from journeylib.journey.stages import milestones_data",
                   "milestones_data(store, definition=d, as_of=AS_OF)"),
    "funnel": ("from journeylib.journey.stages import funnel_data", "funnel_data(store, definition=d, as_of=AS_OF)"),
    "transitions": ("from journeylib.journey.transitions import event_transitions_data",
                    "event_transitions_data(store, definition=d, as_of=AS_OF, top_n=10)"),
    "sessions": ("from journeylib.journey.sessions import sessions_data", "sessions_data(store, as_of=AS_OF)"),
    "features": ("from journeylib.customers.features import build_features",
                 "build_features(store, as_of=AS_OF, window_days=30, windows=(7, 14, 30))"),
}

FIVE_TOGETHER = """
from journeylib.context import Journey
j = Journey.open({db!r}, definition={definition!r}, as_of={as_of!r})
m = j.milestones()
f = j.funnel_data()
t = j.event_transitions_data(top_n=10)
s = j.sessions_data()
x = j.features(window_days=30, windows=(7, 14, 30))
DONE = time.time()
"""


def five_together_code(db: Path, as_of: str) -> str:
    """The child script of the five operations through one analysis context, with each operation's digest.

    ``dig`` maps each operation to ``[rows, digest]`` as its own child prints them, so that the five
    results are checked against the five baselines (:func:`five_same_result`).
    """
    digests = {name: DIGEST_JOURNEYLIB[name] for name in FIVE}
    tail = (
        f"_DIGESTS = {digests!r}\n"
        "_digs = {}\n"
        "for _name, _out in (('milestones', m), ('funnel', f), ('transitions', t), ('sessions', s), ('features', x)):\n"
        "    out = _out\n"
        "    exec(_DIGESTS[_name])\n"
        "    _digs[_name] = [len(out), dig]\n"
        "dig = _digs\n"
        "out = m\n"
    )
    return FIVE_TOGETHER.format(db=str(db), definition=str(DEFINITION), as_of=as_of) + tail


def five_same_result(journeylib_stdout: str, baseline_stdouts: dict[str, str]) -> bool | None:
    """Whether each of the five results of the analysis context agrees with its baseline's (None without all five)."""
    if any(name not in baseline_stdouts for name in FIVE):
        return None
    _, per = digest_of(journeylib_stdout)
    return all(
        same_result(name, f"{per[name][0]}\n{json.dumps(per[name][1], default=str)}", baseline_stdouts[name]) for name in FIVE
    )

REPORT_01 = """
import journeylib.journey.stages as stages
import journeylib.journey.suggest as suggest
from journeylib.context import Journey
from journeylib.store.categories import events_of_kinds
j = Journey.open({db!r}, definition={definition!r}, as_of={as_of!r})
tables = {{}}
tables["stage_map"] = j.stage_map_data()
tables["absent"] = stages.absent_events_data(j.store, definition=j.definition)
tables["funnel"] = j.funnel_data()
tables["funnel_by_segment"] = j.funnel_data(by="segment")
tables["time_to_convert"] = j.time_to_convert_data(by="segment")
tables["progress"] = stages.progress_counts_data(j.progress_data())
tables["stage_transitions"] = j.stage_transitions_data()
tables["event_transitions"] = j.event_transitions_data(top_n=10, events=events_of_kinds(j.store, "product,support"), collapse_repeats=True)
tables["flow"] = j.flow_data(n_steps=5)
tables["variants"] = j.variants_data()
tables["conformance"] = j.conformance_data()
tables["friction"] = j.friction_data(top_n=5, ticket_sentiment=j.scored_tickets())
candidates = j.suggest_milestones_data(outcome="retention", outcome_window_days=90.0)
suggested = suggest.suggested_definition(candidates, base=j.definition)
tables["comparison"] = j.compare_definitions_data(suggested=suggested, outcome="retention", outcome_window_days=90.0)
DONE = time.time()
dig = {{k: len(v) for k, v in tables.items()}}
out = tables["funnel"]
"""

RETENTIONEERING = {
    # retentioneering 5 (its headless ``*_data`` API): an Eventstream over the same events, read from the store with DuckDB.
    "funnel": "out = stream.funnel_data(steps=['setup_completed', 'invite_sent', 'project_created', 'plan_upgraded', 'renewal'])\n"
    "dig = []",
    "transitions": "out = stream.transition_graph_data(edge_weight='count')\ndig = [int(out.to_numpy().sum())]",
    "sessions": "out = stream.split_sessions(timeout='30m').to_dataframe()\ndig = [int(out['session_id'].nunique())]",
}
RETE_PRELUDE = """
import os
os.environ["RETENTIONEERING_NO_TRACK"] = "1"  # no telemetry from the benchmark
import duckdb
from retentioneering.eventstream import Eventstream
READY = time.time()  # imports done: what follows is the work (reading the events included)
con = duckdb.connect({db!r}, read_only=True)
con.execute("SET enable_progress_bar = false")
df = con.execute("SELECT customer_id AS user_id, event, timezone('UTC', timestamp) AS timestamp FROM events "
                 "WHERE timestamp <= CAST($asof AS TIMESTAMPTZ)", {{"asof": {as_of!r}}}).df()
stream = Eventstream(df, schema={{"path_cols": ["user_id"], "event_col": "event", "timestamp_col": "timestamp"}})
"""


def parse_size(text: str) -> int:
    """``1M`` → 1_000_000, ``20k`` → 20_000, ``5000`` → 5000."""
    t = text.strip().lower()
    unit = SIZE_UNITS.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in SIZE_UNITS else t
    try:
        return int(float(number) * unit)
    except ValueError:
        msg = f"--sizes: {text!r} is not a number of events; allowed: digits with an optional k or M suffix (20k, 1M, 10M)"
        raise SystemExit(msg) from None


def label(size: int) -> str:
    """A short name for a size: 20k, 1M, 10M."""
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1_000}k" if size % 1_000 == 0 else str(size)


def directory_bytes(path: Path) -> int:
    """Bytes of the files under *path* now (0 if it is gone); files removed while walking are skipped."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


class ChildFailed(RuntimeError):
    """A benchmark child exited with an error: what it printed last, and how long and how large it ran until then."""

    def __init__(self, message: str, *, error: str, seconds: float, rss_mib: float, spill_mib: float) -> None:
        super().__init__(message)
        self.error, self.seconds, self.rss_mib, self.spill_mib = error, seconds, rss_mib, spill_mib


class SpillWatch:
    """The largest size a DuckDB temp directory reaches while a child runs (sampled every ``SPILL_POLL_SECONDS``).

    DuckDB writes what does not fit in its ``memory_limit`` to its ``temp_directory``;
    each child gets a private one (``$JOURNEYLIB_TEMP_DIRECTORY`` for journeylib, the
    same variable set by the baselines), so what is seen there is that child's spill.
    A spill shorter than one poll can be missed.
    """

    def __init__(self, path: Path) -> None:
        self.path, self.peak = path, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, directory_bytes(self.path))
            self.stop.wait(SPILL_POLL_SECONDS)

    def __enter__(self) -> SpillWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, directory_bytes(self.path))


def measure(argv: list[str], stdin: str | None = None) -> dict[str, Any]:
    """Run a child process; return its whole-process seconds, peak RSS (MiB), peak DuckDB spill (MiB) and stdout.

    The child may print ``@@DONE <time.time()>`` when its result is in memory; the
    time is then start → that moment (its digest after it is not timed). The child's
    ``$JOURNEYLIB_TEMP_DIRECTORY`` is a new directory (under the one set in the
    environment, if any), watched by :class:`SpillWatch` and removed afterwards.
    """
    spill_dir = Path(tempfile.mkdtemp(prefix="jl-bench-spill-", dir=os.environ.get("JOURNEYLIB_TEMP_DIRECTORY") or None))
    env = {**os.environ, "JOURNEYLIB_TEMP_DIRECTORY": str(spill_dir)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, SpillWatch(spill_dir) as spill:
        start = time.time()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else None, stdout=out, stderr=err, cwd=ROOT, env=env)
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        end = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    shutil.rmtree(spill_dir, ignore_errors=True)
    if proc.returncode != 0:
        msg = f"benchmark child {argv[:3]} failed with exit code {proc.returncode}:\n{(stdin or '')[:3000]}\n--- stderr ---\n{stderr[-4000:]}"
        last = [line for line in stderr.splitlines() if line.strip()]
        raise ChildFailed(
            msg, error=(last[-1] if last else f"exit code {proc.returncode}")[:400], seconds=end - start,
            rss_mib=usage.ru_maxrss / 1024, spill_mib=spill.peak / 2**20,
        )
    done, ready = end, None
    for line in stdout.splitlines():
        if line.startswith("@@DONE "):
            done = float(line.split()[1])
        elif line.startswith("@@READY "):
            ready = float(line.split()[1])
    body = "\n".join(line for line in stdout.splitlines() if not line.startswith(("@@DONE ", "@@READY ")))
    return {
        "seconds": done - start, "after_imports": None if ready is None else done - ready, "rss_mib": usage.ru_maxrss / 1024, "spill_mib": spill.peak / 2**20, "stdout": body,
        "load": os.getloadavg()[0],
    }


def python_child(python: str, code: str) -> dict[str, Any]:
    """Run Python code (read from stdin) in a child; it sets ``DONE`` and ``dig``/``out`` for the digest."""
    script = "import time\n" + textwrap.dedent(code) + (
        "\nimport json, sys\n"
        "sys.stdout.write('@@DONE %f\\n' % globals().get('DONE', time.time()))\n"
        "if 'READY' in globals():\n    sys.stdout.write('@@READY %f\\n' % READY)\n"
        "print(len(out))\nprint(json.dumps(dig, default=str))\n"
    )
    return measure([python, "-"], stdin=script)


def journeylib_code(name: str, db: Path, as_of: str, limit: str) -> str:
    """The child script of one journeylib operation (*limit*: the store's DuckDB memory_limit, '' for its default).

    The limit is the store's setting, so that every connection the operation opens has it (a ``SET`` on
    a read-only store would last only for that statement's connection).
    """
    imp, call = JOURNEYLIB_CALLS[name]
    # the definition is read only by the operations that take it (the baselines read none)
    takes_definition = "definition=d" in call
    definition_import = "from journeylib.config.journey import JourneyDefinition" if takes_definition else "pass"
    definition = f"d = JourneyDefinition.from_yaml({str(DEFINITION)!r})" if takes_definition else "pass"
    code = f"""
        {imp}
        from journeylib.store import Store
        {definition_import}
        READY = time.time()
        store = Store({str(db)!r}, read_only=True, memory_limit={limit or None!r})
        {definition}
        AS_OF = {as_of!r}
        out = {call}
        DONE = time.time()
    """
    return textwrap.dedent(code) + DIGEST_JOURNEYLIB[name] + "\n"


def baseline_code(name: str, db: Path, as_of: str, limit: str) -> str:
    """The child script of one hand-written DuckDB baseline (one statement, or several run in turn as ``outs``)."""
    sqls = BASELINES[name]
    statements = [sqls] if isinstance(sqls, str) else list(sqls)
    code = f"""
        import duckdb
        import os
        con = duckdb.connect({str(db)!r}, read_only=True)
        con.execute("SET enable_progress_bar = false")
        con.execute("SET temp_directory = $d", {{"d": os.environ["JOURNEYLIB_TEMP_DIRECTORY"]}})
        {limit_line(limit, "con")}
        outs = [con.execute(sql, {{"asof": {as_of!r}}}).df() for sql in {statements!r}]
        out = outs[0]
        DONE = time.time()
    """
    return textwrap.dedent(code) + DIGEST_BASELINE[name] + "\n"


def limit_line(limit: str, obj: str) -> str:
    """A statement setting DuckDB's memory limit on a baseline's connection ('' for DuckDB's default)."""
    return f"{obj}.execute(\"SET memory_limit = '{limit}'\")" if limit else "pass"


def repeat(runs: int, fn: Any) -> dict[str, Any]:
    """Run a measurement *runs* times: median seconds, spread, largest peak RSS and spill, the last stdout."""
    return summary([fn() for _ in range(max(1, runs))])


def summary(res: list[Any]) -> dict[str, Any]:
    """The runs *res* of one measurement as :func:`repeat` gives them (median, spread, largest RSS and spill)."""
    secs = [r["seconds"] for r in res]
    after = [r.get("after_imports") for r in res]
    return {
        "seconds": statistics.median(secs),
        "after_imports": statistics.median(after) if after and all(a is not None for a in after) else None, "spread": max(secs) - min(secs), "rss_mib": max(r["rss_mib"] for r in res),
        "spill_mib": max(r["spill_mib"] for r in res),
        "stdout": res[-1]["stdout"], "load": round(statistics.mean(r["load"] for r in res), 2), "all_seconds": [round(s, 3) for s in secs],
    }


def attempt(runs: int, fn: Any) -> dict[str, Any]:
    """:func:`repeat`, or when a run fails the failure: ``error`` (the child's last stderr line), its seconds, RSS and spill."""
    try:
        return {**repeat(runs, fn), "error": None}
    except ChildFailed as exc:
        return failure(exc)


def failure(exc: ChildFailed) -> dict[str, Any]:
    """A failed measurement: ``error`` (the child's last stderr line), the seconds, RSS and spill until it failed."""
    return {"seconds": None, "spread": None, "rss_mib": exc.rss_mib, "spill_mib": exc.spill_mib, "stdout": "",
            "load": round(os.getloadavg()[0], 2), "error": f"failed after {exc.seconds:.1f} s: {exc.error}"}


def attempt_pair(runs: int, first: Any, second: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`attempt` of two measurements with their runs interleaved: A B, B A, A B, ...

    journeylib and its baseline are compared by the ratio of their medians. Run
    one after the other (all of A's runs, then all of B's), a change in the
    machine between the two blocks (another job, the page cache, the CPU's
    clock) lands on one side only: on this 2-core machine the same code gave
    1.0x to 1.3x from one invocation to the next that way. Interleaved, each
    round measures both under the same conditions, and which goes first
    alternates. A side whose run fails is not run again; the other goes on.
    """
    fns = (first, second)
    res: tuple[list[Any], list[Any]] = ([], [])
    failed: list[dict[str, Any] | None] = [None, None]
    for i in range(max(1, runs)):
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            if failed[side] is None:
                try:
                    res[side].append(fns[side]())
                except ChildFailed as exc:
                    failed[side] = failure(exc)
    a, b = (failed[side] or {**summary(res[side]), "error": None} for side in (0, 1))
    return a, b


def digest_of(stdout: str) -> tuple[int, Any]:
    """Row count and digest printed last by a child."""
    lines = stdout.strip().splitlines()
    return int(lines[-2]), json.loads(lines[-1])


def same_result(name: str, journeylib_stdout: str, baseline_stdout: str) -> bool:
    """Whether journeylib's and the baseline's printed row counts and digests agree.

    milestones and features: journeylib's frame is long (customer × stage) or wide (one column
    per feature), the baseline's wide or one row, so only their digests (which carry the
    counts) are compared; the other operations must also have as many rows.
    """
    (jl_rows, jl_dig), (b_rows, b_dig) = digest_of(journeylib_stdout), digest_of(baseline_stdout)
    return bool(jl_dig == b_dig and (jl_rows == b_rows or name in ("milestones", "features")))


def build_store(size: int, cache: Path, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generate (once) the synthetic world of about *size* events and load it into a store (once)."""
    customers = max(20, round(size / EVENTS_PER_CUSTOMER))
    world, db = cache / f"world-{label(size)}-s{seed}", cache / f"store-{label(size)}-s{seed}.duckdb"
    info: dict[str, Any] = {"customers": customers}
    if not (world / "truth.json").exists():
        r = python_child(sys.executable, f"from journeylib.datasets import synthesize\nsynthesize({str(world)!r}, n_customers={customers}, seed={seed})\n"
                         "out, dig = [], []")
        info["synth_seconds"] = round(r["seconds"], 1)
    if not db.exists():
        tmp = db.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        info["load"] = bench_journey.load_world(world, tmp, "parquet")
        tmp.rename(db)
    truth = json.loads((world / "truth.json").read_text())
    info["events"] = int(truth["row_counts"]["events"])
    info["as_of"] = truth["as_of"]
    return db, info


def store_default_memory_limit(db: Path) -> str:
    """The DuckDB ``memory_limit`` a read-only journeylib store on *db* sets by default: 600MB, more for a large file.

    Resolved as a :class:`journeylib.store.Store` resolves it (``$JOURNEYLIB_MEMORY_LIMIT`` first, then the
    size of the file: :func:`journeylib.store.database.read_memory_limit`); DuckDB's own (80% of the RAM)
    if it sets none.
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from journeylib.store.database import engine_settings

    return engine_settings(read_only=True, path=db).get("memory_limit", "80%")


def journeylib_limits(record: dict[str, Any]) -> str:
    """The header's words for journeylib's DuckDB ``memory_limit``: the one given, or the default resolved per store."""
    if record.get("memory_limit_given"):
        return str(record["memory_limit_given"])
    per_size = record.get("memory_limit_by_size") or {}
    if not per_size:
        return "default"
    return "default, resolved per store (" + ", ".join(f"{size}: {limit}" for size, limit in per_size.items()) + ")"


def rete_available(python: str | None) -> str | None:
    """The retentioneering version importable by *python*, or None."""
    if not python:
        return None
    proc = subprocess.run([python, "-c", "import retentioneering; print(retentioneering.__version__)"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def warm_page_cache(path: Path, chunk: int = 16 * 2**20) -> float:
    """Read the file *path* once, so that it is in the system's page cache; return the seconds it took.

    The children read the store file; the first of them would otherwise read it from disk while
    the others find it in memory (at 100M events, a 2.66 GB file: journeylib's milestones, measured
    first, took 7.2-7.8 s cold against 5.0 s warm, beside a 5.3 s baseline).
    """
    start = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while f.read(chunk):
            pass
    return time.perf_counter() - start


def run_size(size: int, args: argparse.Namespace, rete: str | None, log: Any, write: Any) -> list[dict[str, Any]]:
    """Every operation at one size: rows of the results table, each passed to *write* when measured."""
    db, info = build_store(size, args.cache, args.seed)
    as_of, n_events = info["as_of"], info["events"]
    limit = args.memory_limit or store_default_memory_limit(db)
    args.limits[label(size)] = limit
    log(f"{label(size):>5} journeylib's DuckDB memory_limit: {limit}"
        f"{'' if args.memory_limit else f' (its default for this store, a file of {db.stat().st_size / 1e6:,.0f} MB)'}")
    runs = args.runs_large if n_events > LARGE_EVENTS else args.runs
    seconds = warm_page_cache(db)
    log(f"{label(size):>5} store file read once before measuring ({seconds:.1f} s): no child pays the first read from disk")
    rows: list[dict[str, Any]] = []
    five_base: dict[str, Any] = {"seconds": 0.0, "spread": 0.0, "rss_mib": 0.0, "spill_mib": 0.0}
    base_stdouts: dict[str, str] = {}  # each operation's baseline output, for the five together's check
    for name in args.operations:
        kept = args.resumed.get((label(size), name))
        if kept is not None:  # measured by the run being resumed
            if name in FIVE:
                five_base = add_baseline(five_base, {"seconds": kept["baseline_s"], "spread": kept["baseline_spread_s"],
                                                     "rss_mib": kept["baseline_rss_mib"], "spill_mib": kept["baseline_spill_mib"]})
            log(f"{label(size):>5} {name:<14} kept from {args.out.with_suffix('.json')}")
            continue
        jl: dict[str, Any]
        base: dict[str, Any] | None = None
        rt: dict[str, Any] | None = None
        same: bool | None = None
        if name in JOURNEYLIB_CALLS:
            jl, base = attempt_pair(
                runs,
                lambda n=name: python_child(sys.executable, journeylib_code(n, db, as_of, args.memory_limit)),
                lambda n=name: python_child(sys.executable, baseline_code(n, db, as_of, args.baseline_memory_limit)),
            )
            if jl["error"] is None and base["error"] is None:
                same = same_result(name, jl["stdout"], base["stdout"])
                if not same:
                    log(f"  DIFFERENT RESULT {name}: journeylib {digest_of(jl['stdout'])} vs baseline {digest_of(base['stdout'])}")
            for who, r in (("journeylib", jl), ("baseline", base)):
                if r["error"]:
                    log(f"  {who} {name} FAILED: {r['error']}")
            if name in FIVE:
                five_base = add_baseline(five_base, base)
                if base["error"] is None:
                    base_stdouts[name] = base["stdout"]
            if rete and name in RETENTIONEERING and n_events <= args.retentioneering_max_events:
                code = RETE_PRELUDE.format(db=str(db), as_of=as_of) + RETENTIONEERING[name].replace("\ndig", "\nDONE = time.time()\ndig")
                try:
                    rt = repeat(1, lambda c=code: python_child(args.retentioneering_python, c))  # one run: it is slow
                except RuntimeError as exc:
                    log(f"  retentioneering {name} failed: {str(exc)[-600:]}")
        elif name == "five_together":
            code = five_together_code(db, as_of)
            jl = attempt(runs, lambda c=code: python_child(sys.executable, c))
            base = five_base if all(o in args.operations for o in FIVE) else None
            if jl["error"] is None:
                same = five_same_result(jl["stdout"], base_stdouts)
                if same is False:
                    log(f"  DIFFERENT RESULT five_together: journeylib {digest_of(jl['stdout'])}")
        elif name == "report_01":
            code = REPORT_01.format(db=str(db), definition=str(DEFINITION), as_of=as_of)
            jl = attempt(runs, lambda c=code: python_child(sys.executable, c))
        elif name == "score":
            with tempfile.TemporaryDirectory() as tmp:
                argv = [str(Path(sys.executable).parent / "journeylib"), "score", "--db", str(db), "--out", f"{tmp}/scores.csv"]
                jl = attempt(runs, lambda a=argv: measure(a))
        else:
            msg = f"--operations: unknown operation {name!r}; allowed: {', '.join(OPERATIONS)}"
            raise SystemExit(msg)
        secs, base_secs = jl["seconds"], base["seconds"] if base else None
        row = {
            "size": label(size), "events": n_events, "customers": info["customers"], "operation": name, "runs": runs,
            "journeylib_s": rounded(secs, 3), "journeylib_spread_s": rounded(jl["spread"], 3), "journeylib_rss_mib": rounded(jl["rss_mib"], 1),
            "baseline_s": rounded(base_secs, 3), "baseline_spread_s": rounded(base["spread"], 3) if base else None,
            "baseline_rss_mib": rounded(base["rss_mib"], 1) if base else None,
            "ratio_vs_baseline": round(secs / base_secs, 2) if secs is not None and base_secs else None,
            "same_result": same,
            "retentioneering_s": round(rt["seconds"], 3) if rt else None, "retentioneering_rss_mib": round(rt["rss_mib"], 1) if rt else None,
            "ratio_vs_retentioneering": round(secs / rt["seconds"], 3) if rt and secs is not None else None,
            "journeylib_after_imports_s": rounded(jl.get("after_imports"), 3),
            "retentioneering_after_imports_s": rounded(rt.get("after_imports"), 3) if rt else None,
            "ratio_vs_retentioneering_after_imports": (
                round(jl["after_imports"] / rt["after_imports"], 3) if rt and jl.get("after_imports") and rt.get("after_imports") else None
            ),
            "journeylib_ns_per_event": round(secs / n_events * 1e9, 1) if secs is not None else None,
            "journeylib_spill_mib": rounded(jl["spill_mib"], 1), "baseline_spill_mib": rounded(base["spill_mib"], 1) if base else None,
            "load_average": jl.get("load"),
            "journeylib_error": jl["error"] or (f"baseline {base['error']}" if base and base.get("error") else None),
        }
        rows.append(row)
        write(row)
        log(f"{label(size):>5} {name:<14} jl {row['journeylib_s'] or 0:>8.2f}s {row['journeylib_rss_mib']:>7.0f}MiB  "
            f"base {row['baseline_s'] or 0:>8.2f}s  ratio {row['ratio_vs_baseline']}  same {same}  "
            f"spill {row['journeylib_spill_mib']}/{row['baseline_spill_mib']} MiB  load {row['load_average']}")
    return rows


def rounded(value: float | None, digits: int) -> float | None:
    """*value* rounded, or None (a failed measurement)."""
    return None if value is None else round(value, digits)


def add_baseline(total: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The sum of the five baselines so far plus *base* (seconds and spread add, RSS and spill are the largest).

    A failed or missing baseline (seconds None) makes the sum None: no ratio is shown against a partial sum.
    """
    if total["seconds"] is None or base.get("seconds") is None:
        return {**total, "seconds": None, "spread": None}
    return {
        "seconds": total["seconds"] + base["seconds"], "spread": total["spread"] + (base["spread"] or 0.0),
        "rss_mib": max(total["rss_mib"], base["rss_mib"] or 0.0), "spill_mib": max(total["spill_mib"], base["spill_mib"] or 0.0),
    }


def machine() -> dict[str, Any]:
    """Cores, RAM, Python, DuckDB and the load average now."""
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    import duckdb

    return {
        "cores": os.cpu_count(), "ram_mib": mem, "platform": platform.platform(), "python": platform.python_version(),
        "duckdb": duckdb.__version__, "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def byte_compile_journeylib() -> None:
    """Byte-compile journeylib's modules that lack an up-to-date ``.pyc``, as installing the package does.

    A source checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (this sandbox) has no ``__pycache__``, so every
    child would compile the ~6,700 lines of the stage path again (about 45 ms) while the baselines import
    byte-compiled site-packages. ``compileall`` skips the modules whose ``.pyc`` is newer than the source.
    """
    import compileall
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        compileall.compile_dir(str(ROOT / "journeylib"), quiet=1)


def linearity(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cost per event of each operation from one size to the next (1.0 = linear)."""
    out = []
    by_op: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_op.setdefault(r["operation"], []).append(r)
    for op, rs in by_op.items():
        rs = sorted((r for r in rs if r["journeylib_ns_per_event"] is not None), key=lambda r: r["events"])
        for a, b in itertools.pairwise(rs):
            out.append({"operation": op, "from": a["size"], "to": b["size"],
                        "ns_per_event_ratio": round(b["journeylib_ns_per_event"] / a["journeylib_ns_per_event"], 2)})
    return out


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of issue 17 checked on the largest size measured up to 10M events (ratios, this machine)."""
    sized = [r for r in rows if r["events"] <= 12_000_000]
    if not sized:
        return []
    top = max(r["events"] for r in sized)
    at = {r["operation"]: r for r in sized if r["events"] == top}
    out = []
    for op in FIVE:
        if op in at and at[op]["ratio_vs_baseline"] is not None:
            out.append({"target": f"{op} <= 1.0x the DuckDB baseline", "size": at[op]["size"], "value": at[op]["ratio_vs_baseline"],
                        "met": at[op]["ratio_vs_baseline"] <= 1.0})
    if "five_together" in at and at["five_together"]["ratio_vs_baseline"] is not None:
        r = at["five_together"]["ratio_vs_baseline"]
        out.append({"target": "the five together <= 0.7x the sum of the five baselines", "size": at["five_together"]["size"],
                    "value": r, "met": r <= 0.7})
    for op, r in at.items():
        if r["retentioneering_s"] and r["journeylib_s"]:
            ratio = r["retentioneering_s"] / r["journeylib_s"]
            out.append({"target": f"{op} >= 10x faster than retentioneering", "size": r["size"], "value": round(ratio, 2), "met": ratio >= 10})
    size = next(iter(at.values()))["size"]
    event_level = [op for op in (*FIVE, "five_together") if op in at]
    for ops, what in ((event_level, "the event-level operations and the five together"), (list(at), "every operation")):
        if not ops:
            continue
        largest = max(ops, key=lambda op: at[op]["journeylib_rss_mib"] or 0.0)
        peak = at[largest]["journeylib_rss_mib"] or 0.0
        out.append({"target": f"peak RSS <= 800 MiB ({what}; largest: {largest})", "size": size, "value": peak, "met": peak <= 800})
    return out


FINDINGS = "\n## Findings"


def write_markdown(path: Path, record: dict[str, Any]) -> None:
    """The results table as Markdown; a ``## Findings`` section already in the file is kept."""
    kept = ""
    if path.exists():
        old = path.read_text()
        if FINDINGS in old:
            kept = old[old.index(FINDINGS):]
    m = record["machine"]
    lines = [
        "# Scale benchmark: journeylib vs hand-written DuckDB SQL", "",
        f"Written by `benchmarks/bench_scale.py` on {record['when']}: {m['cores']} cores, {m['ram_mib']} MiB RAM, {m['platform']}, "
        f"Python {m['python']}, DuckDB {m['duckdb']}; load average at start {m['load_average']} "
        "(a shared machine: compare ratios within one run). Whole processes (start-up and imports count; "
        "journeylib byte-compiled first, as an installed package is), "
        f"median of {record['runs']} runs ({record.get('runs_large', record['runs'])} above {LARGE_EVENTS:,} events), spread = max - min; "
        f"DuckDB memory_limit: journeylib {record.get('memory_limit')}, baselines {record.get('baseline_memory_limit')}; "
        "spill = the largest size of the child's private DuckDB temp directory (sampled); "
        f"retentioneering: {record['retentioneering'] or 'not measured'}.",
        "",
        "| " + " | ".join(RESULT_COLUMNS) + " |",
        "|" + "---|" * len(RESULT_COLUMNS),
    ]
    if record.get("resumed_from"):
        earlier = ", ".join(f"{x['when']} (load average at start {x['machine']['load_average']})" for x in record["resumed_from"])
        lines[-2:-2] = [f"Resumed (`--resume`): the rows measured by the run(s) of {earlier} are kept; the others are from this run.", ""]
    for r in record["rows"]:
        lines.append("| " + " | ".join("" if r[c] is None else str(r[c]) for c in RESULT_COLUMNS) + " |")
    if record["linearity"]:
        lines += ["", "Cost per event, larger size / smaller size (1.0 = linear):", "",
                  "| operation | from | to | ns_per_event_ratio |", "|---|---|---|---|"]
        lines += [f"| {x['operation']} | {x['from']} | {x['to']} | {x['ns_per_event_ratio']} |" for x in record["linearity"]]
    if record.get("targets"):
        lines += ["", "Targets (issue 17; ratios on this machine, under the load shown):", "", "| target | size | value | met |", "|---|---|---|---|"]
        lines += [f"| {t['target']} | {t['size']} | {t['value']} | {'yes' if t['met'] else 'NO'} |" for t in record["targets"]]
    path.write_text("\n".join(lines) + "\n" + kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated event counts (20k, 1M, 10M, 100M)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median and spread)")
    parser.add_argument("--operations", default=",".join(OPERATIONS), help=f"comma-separated subset of {', '.join(OPERATIONS)}")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache", help="where generated worlds and stores are kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs-large", type=int, default=None,
                        help=f"runs per measurement at sizes above {LARGE_EVENTS:,} events (default: --runs)")
    parser.add_argument("--memory-limit", default="", help="DuckDB memory_limit for journeylib and the baselines (default: journeylib's)")
    parser.add_argument("--baseline-memory-limit", default=None,
                        help="DuckDB memory_limit for the baselines only (default: --memory-limit, else DuckDB's own)")
    parser.add_argument("--retentioneering-python", default=None, help="a Python interpreter that can import retentioneering 5")
    parser.add_argument("--retentioneering-max-events", type=parse_size, default=10_000_000,
                        help="measure retentioneering (one run each) only up to this many events (it holds the log in pandas)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale", help="results path without suffix (.json and .md)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows of an earlier run in --out (.json) and measure only the size × operation pairs it lacks")
    args = parser.parse_args(argv)
    args.operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    args.runs_large = args.runs if args.runs_large is None else args.runs_large
    args.baseline_memory_limit = args.memory_limit if args.baseline_memory_limit is None else args.baseline_memory_limit
    args.cache.mkdir(parents=True, exist_ok=True)
    byte_compile_journeylib()
    if args.memory_limit:  # the analysis context, the 01 report and `journeylib score` read it from the environment
        os.environ["JOURNEYLIB_MEMORY_LIMIT"] = args.memory_limit
    rete = rete_available(args.retentioneering_python)
    if args.retentioneering_python and not rete:
        sys.stdout.write(f"retentioneering is not importable by {args.retentioneering_python}; not measured\n")

    def log(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    record: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "runs": args.runs,
        "runs_large": args.runs_large,
        "definition": str(DEFINITION.relative_to(ROOT)),
        "memory_limit": args.memory_limit or "default", "memory_limit_given": args.memory_limit or None,
        "memory_limit_by_size": {},
        "baseline_memory_limit": args.baseline_memory_limit or "DuckDB default (80% of RAM)",
        "retentioneering": f"retentioneering {rete}" if rete else None, "columns": list(RESULT_COLUMNS), "rows": [],
    }
    args.resumed = {}
    args.limits = record["memory_limit_by_size"]  # filled per size by run_size
    if args.resume and args.out.with_suffix(".json").exists():
        earlier = json.loads(args.out.with_suffix(".json").read_text())
        kept_rows = [{c: r.get(c) for c in RESULT_COLUMNS} for r in earlier["rows"] if r.get("journeylib_s") is not None]
        record["rows"] = kept_rows
        record["resumed_from"] = [*earlier.get("resumed_from", []), {"when": earlier["when"], "machine": earlier["machine"]}]
        args.resumed = {(r["size"], r["operation"]): r for r in kept_rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write(row: dict[str, Any] | None = None) -> None:
        # after every operation, so that an interrupted run keeps what it measured
        if row is not None:
            record["rows"].append(row)
        record["memory_limit"] = journeylib_limits(record)
        record["linearity"] = linearity(record["rows"])
        record["targets"] = targets(record["rows"])
        args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        write_markdown(args.out.with_suffix(".md"), record)

    for size in [parse_size(s) for s in args.sizes.split(",")]:
        run_size(size, args, rete, log, write)
    write()
    log(f"written {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
