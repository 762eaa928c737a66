"""Check journeylib's analyses against the planted truth of the second synthetic world (issue 13, evidence).

Run with ``python benchmarks/second_world_check.py`` (default 5,000
customers, seed 0). It

1. writes the world with :func:`journeylib.datasets.synthesize_second_world`
   (an HR and payroll SaaS that shares none of the demo world's names,
   sources, trial length, stage order or planted windows);
2. ingests it with the canonical-folder ingest into a fresh store and checks
   that nothing is quarantined and that the store's counts equal the truth;
3. runs the code cells of the notebooks ``01_journey_map``,
   ``02_cohorts_and_segments`` and ``03_churn_drivers`` as they are, with
   the parameters of ``parameters/<notebook>/default.yaml`` (only ``db``,
   ``definition`` (the world's ``journey.yaml``) and ``output_dir`` set),
   so nothing is named by hand; a cell that fails is recorded with its error
   and the next cells still run;
4. compares what the notebooks computed with the truth: the funnel's reach
   per stage, the rank of the planted churn and conversion behaviours and the
   window chosen, the outcomes counted, the planted contract attribute, null
   behaviours and attributes found significant, and the adjusted Rand index of
   the behavioural segments against the personas, beside plain k-means on
   ``log1p`` counts of the product events (``web`` and ``mobile``) of the
   same window;
5. writes ``benchmarks/results/second_world.md`` (and ``.json``).

Analyses that do not recover the truth are reported as measured; nothing is
adjusted to the world.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from journeylib.datasets import synthesize_second_world
from journeylib.store import Store
from journeylib.store.ingest import ingest_folder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01_journey_map", "02_cohorts_and_segments", "03_churn_drivers")
RESULTS = ROOT / "benchmarks" / "results"


def _notebook_cells(name: str) -> tuple[str, list[str]]:
    """The parameters cell and the other code cells of a notebook, as source text."""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    params, cells = "", []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            params = src
        else:
            cells.append(src)
    return params, cells


def run_notebook(name: str, db: Path, definition: Path) -> dict[str, Any]:
    """Execute a notebook's code cells in one namespace, with its default parameter set; record failing cells."""
    params, cells = _notebook_cells(name)
    ns: dict[str, Any] = {"__name__": f"notebook_{name}"}
    exec(compile(params, f"{name}:parameters", "exec"), ns)
    defaults = yaml.safe_load((ROOT / "parameters" / name / "default.yaml").read_text(encoding="utf-8")) or {}
    ns.update({k: v for k, v in defaults.items() if k in ns})
    ns.update(db=str(db), definition=str(definition), output_dir="")
    failures: list[dict[str, str]] = []
    started = time.perf_counter()
    for i, src in enumerate(cells):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                exec(compile(src, f"{name}:cell{i}", "exec"), ns)
            except Exception as exc:  # a failing cell is a finding, not the end of the check
                first_line = src.strip().splitlines()[0] if src.strip() else ""
                failures.append({"cell": str(i), "code": first_line[:100], "error": f"{type(exc).__name__}: {exc}"[:400],
                                 "where": traceback.format_exc().strip().splitlines()[-1][:200]})
        ns.setdefault("_warnings", []).extend(f"cell{i}: {w.category.__name__}: {w.message}"[:300] for w in caught)
    ns["_failures"] = failures
    ns["_seconds"] = round(time.perf_counter() - started, 1)
    ns["_parameters"] = {k: ns.get(k) for k in defaults}
    return ns


# -- comparisons ------------------------------------------------------------------------------------
def _row(check: str, truth: Any, measured: Any, ok: bool | None, note: str = "") -> dict[str, Any]:
    return {"check": check, "truth": truth, "measured": measured, "status": "n/a" if ok is None else ("ok" if ok else "differs"), "note": note}


def funnel_rows(ns: dict[str, Any], truth: dict[str, Any]) -> list[dict[str, Any]]:
    funnel = ns.get("funnel")
    if not isinstance(funnel, pd.DataFrame):
        return [_row("funnel", "-", "not computed", False, _failure_note(ns, "funnel"))]
    overall = funnel[funnel["group"] == "all"] if "group" in funnel else funnel
    got = overall.set_index("stage")
    rows = []
    for s in truth["funnel"]:
        name = s["stage"]
        if name not in got.index:
            rows.append(_row(f"funnel reach: {name}", s["reached"], "stage missing", False))
            continue
        r = got.loc[name]
        rows.append(_row(f"funnel reach: {name} ({s['order']})", s["reached"], int(r["reached"]), int(r["reached"]) == s["reached"]))
        for col in ("dropped", "censored"):
            if col in r:
                rows.append(_row(f"funnel {col}: {name}", s[col], int(r[col]), int(r[col]) == s[col]))
    return rows


def _failure_note(ns: dict[str, Any], word: str) -> str:
    hits = [f["error"] for f in ns.get("_failures", []) if word in f["code"]]
    return hits[0] if hits else ""


def _match(df: pd.DataFrame, *, event: str | None = None, feature_has: str | None = None) -> pd.DataFrame:
    m = pd.Series(True, index=df.index)
    if event is not None:
        m &= df["event"].astype(str) == event
    if feature_has is not None:
        m &= df["candidate"].astype(str).str.contains(feature_has, regex=False) | df["feature"].astype(str).str.contains(feature_has, regex=False)
    return df[m]


def driver_rows(drivers: Any, label: str, planted: list[dict[str, Any]], truth: dict[str, Any], ns: dict[str, Any], var: str) -> list[dict[str, Any]]:
    if not isinstance(drivers, pd.DataFrame):
        return [_row(f"{label}: drivers table", "-", "not computed", False, _failure_note(ns, var))]
    rows: list[dict[str, Any]] = []
    d = drivers.copy()
    sig = d[d["significant"].fillna(False).astype(bool)] if "significant" in d else d.iloc[0:0]
    ranked = sig.sort_values("rank") if "rank" in sig else sig
    top = ranked.iloc[0] if len(ranked) else None
    rows.append(_row(f"{label}: top significant driver", "planted behaviour", "none" if top is None else str(top["candidate"]), None,
                     "" if top is None else f"window {top.get('window_days')} d, {_estimate_text(top)}"))
    if "population" in d and len(d):
        rows.append(_row(f"{label}: customers analysed / outcomes counted", "-",
                         f"{int(d['population'].iloc[0])} / {int(d['events'].iloc[0])}", None,
                         "excluded: " + ", ".join(f"{c.replace('n_excluded_', '').replace('n_', '')} {int(d[c].iloc[0])}"
                                                   for c in d.columns if c.startswith(("n_excluded", "n_not_at_risk")) and pd.notna(d[c].iloc[0]))
                         + (f"; horizon {d['horizon_days'].iloc[0]:g} d" if "horizon_days" in d else "")))
    behaviours = [p for p in planted if p.get("event")]
    planted_events = {p["event"] for p in behaviours}
    for p in planted:
        if p.get("event"):
            hits = _match(ranked, event=p["event"])
            best = hits.iloc[0] if len(hits) else None
            rank = None if best is None else int(best["rank"])
            rows.append(_row(
                f"{label}: rank of '{p['exposed']}'", 1, "not significant" if best is None else rank, rank == 1,
                "" if best is None else f"candidate {best['candidate']} ({best['exposure']}), window {best['window_days']} d, "
                f"{_estimate_text(best)} (true RR {p['true_risk_ratio']})",
            ))
            same = d[(d["event"].astype(str) == p["event"]) & d["rr"].notna()].sort_values(["window_days", "threshold"])
            rows.append(_row(f"{label}: splits of {p['event']} tried (the plateau)", "-", len(same), None, "; ".join(
                f"{r.candidate} RR {r.rr:.2f} q {r.q_value:.2g}{' *' if r.significant else ''}" for r in same.head(10).itertuples()
            )))
            rows.append(_row(f"{label}: window of the planted behaviour", p["window_days"],
                             "-" if best is None else int(best["window_days"]),
                             None if best is None else int(best["window_days"]) == p["window_days"]))
        else:
            hits = _match(d, feature_has=p["attribute"])
            sig_hits = hits[hits["significant"].fillna(False).astype(bool)] if len(hits) else hits
            rows.append(_row(f"{label}: attribute {p['exposed']}", f"RR {p['true_risk_ratio']}",
                             "not a candidate" if hits.empty else ("significant" if len(sig_hits) else "not significant"),
                             bool(len(sig_hits)),
                             "" if sig_hits.empty else f"{sig_hits.iloc[0]['exposure']}: {_estimate_text(sig_hits.iloc[0])}"))
    planted_attrs = {p["attribute"] for p in planted if p.get("attribute")}
    related = planted_events | _stages_built_on(truth, planted_events)
    null_sig = ranked[~ranked["event"].astype(str).isin(related) & ~ranked["feature"].astype(str).isin(related)]
    for a in planted_attrs:
        null_sig = null_sig[~null_sig["candidate"].astype(str).str.contains(a, regex=False)]
    null_attrs = {a["attribute"] for a in truth["null_attributes"]}
    attr_sig = [c for c in null_sig["candidate"].astype(str) if any(a in c for a in null_attrs)]
    rows.append(_row(f"{label}: null behaviours/attributes significant", 0, len(null_sig), len(null_sig) == 0,
                     ", ".join(null_sig["candidate"].astype(str).head(8)) + (f" (attributes: {', '.join(attr_sig[:4])})" if attr_sig else "")))
    return rows


def _estimate_text(row: pd.Series) -> str:
    """The ranking estimate of a drivers row with its interval and q, and the crude RR beside a hazard ratio."""
    crude = f"RR {row['rr']:.2f} [{row['rr_ci_low']:.2f}, {row['rr_ci_high']:.2f}]"
    if str(row.get("estimate", "")) == "hazard_ratio":
        return (f"HR {row['hr']:.2f} [{row['hr_ci_low']:.2f}, {row['hr_ci_high']:.2f}] (Cox, log-rank q {row['q_value']:.2g}, "
                f"{int(row['n_km'])} customers); crude {crude}")
    return f"{crude}, q {row['q_value']:.2g}"


def _stages_built_on(truth: dict[str, Any], events: set[str]) -> set[str]:
    """Stage features (``stage_<slug>...``) whose rule, or an earlier ordered stage's, counts a planted event.

    Reaching such a stage depends on the planted behaviour, so its association
    with the outcome is real, not a null finding.
    """
    from journeylib.customers.features import feature_slug

    definition = yaml.safe_load((ROOT / "journeylib" / "datasets" / "second_world.yaml").read_text(encoding="utf-8"))
    out: set[str] = set()
    inherited = False
    for stage in definition["stages"]:
        rule = stage["rule"]
        uses = isinstance(rule, dict) and rule.get("event") in events
        free = stage.get("order") == "any"
        dep = uses or (inherited and not free)
        if dep:
            out.add(f"stage_{feature_slug(stage['name'])}")
        if not free:
            inherited = dep
    names = {stage["name"] for stage in definition["stages"] if f"stage_{feature_slug(stage['name'])}" in out}
    return out | {f"{f}_by_{d}d" for f in out for d in (7, 14, 21, 30)} | names


def segment_rows(ns: dict[str, Any], truth: dict[str, Any], store_path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    personas = pd.Series(truth["personas"])
    window = int(ns.get("window_days", 14))
    reference = kmeans_reference(store_path, personas, window, k=len(truth["persona_counts"]))
    matrix, assignments, segmenter = ns.get("matrix"), ns.get("assignments"), ns.get("segmenter")
    if isinstance(matrix, pd.DataFrame):
        rows.append(_row("segments: columns of the behaviour matrix", "-", len(matrix.columns), None, ", ".join(map(str, matrix.columns))[:300]))
    if isinstance(assignments, pd.DataFrame):
        a = assignments.set_index("customer_id")["segment"]
        common = a.index.intersection(personas.index)
        ari = adjusted_rand_score(personas[common], a[common])
        k = getattr(segmenter, "n_segments_", None)
        stab = segmenter.stability_summary() if segmenter is not None and hasattr(segmenter, "stability_summary") else {}
        rows.append(_row("segments: ARI vs personas (notebook default)", ">= 0.6", round(float(ari), 3), ari >= 0.6,
                         f"k = {k} (true {len(truth['persona_counts'])}), {len(common)} customers; stability {json.dumps(stab)[:150]}"))
    else:
        rows.append(_row("segments: ARI vs personas (notebook default)", ">= 0.6", "not computed", False, _failure_note(ns, "segment")))
    rows.append(_row("segments: ARI of plain k-means on log1p counts (reference)", "-", reference["ari"], None,
                     f"k = {reference['k']}, {reference['n']} customers, {reference['columns']} event columns, first {window} days"))
    return rows


def kmeans_reference(store_path: Path, personas: pd.Series, window: int, k: int) -> dict[str, Any]:
    """Plain k-means on standardised log1p counts of the product events (web, mobile) in the first *window* days."""
    store = Store(store_path, read_only=True)
    try:
        counts = store.query(
            "SELECT e.customer_id, e.event, count(*) AS n FROM events e JOIN customers c USING (customer_id) "
            "WHERE e.source IN ('web', 'mobile') AND e.timestamp >= c.signup_at "
            f"AND e.timestamp < c.signup_at + INTERVAL {window} DAY GROUP BY 1, 2"
        )
        signups = store.query(f"SELECT customer_id FROM customers WHERE signup_at + INTERVAL {window} DAY <= (SELECT max(timestamp) FROM events)")
    finally:
        store.close()
    wide = counts.pivot_table(index="customer_id", columns="event", values="n", fill_value=0).reindex(signups["customer_id"], fill_value=0)
    z = StandardScaler().fit_transform(np.log1p(wide.to_numpy(dtype=float)))
    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(z)
    common = wide.index.intersection(personas.index)
    ari = adjusted_rand_score(personas[common], pd.Series(labels, index=wide.index)[common])
    return {"ari": round(float(ari), 3), "k": k, "n": len(common), "columns": wide.shape[1]}


def store_rows(store_path: Path, truth: dict[str, Any], results: list[Any]) -> list[dict[str, Any]]:
    store = Store(store_path, read_only=True)
    try:
        rows = [_row("ingest: rows quarantined", 0, sum(r.quarantined for r in results), sum(r.quarantined for r in results) == 0)]
        for table, n in truth["row_counts"].items():
            got = int(store.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])
            rows.append(_row(f"store rows: {table}", n, got, got == n))
        c = store.query("SELECT count(converted_at) AS conv, count(churned_at) AS churn FROM customers").iloc[0]
        rows.append(_row("store: converted customers", truth["outcomes"]["converted"], int(c["conv"]), int(c["conv"]) == truth["outcomes"]["converted"]))
        rows.append(_row("store: churned customers", truth["outcomes"]["churned"], int(c["churn"]), int(c["churn"]) == truth["outcomes"]["churned"]))
    finally:
        store.close()
    return rows


def markdown(report: dict[str, Any]) -> str:
    t = report["truth_summary"]
    lines = [
        "# Second synthetic world: measured vs truth",
        "",
        f"Generated by `benchmarks/second_world_check.py` on {report['when']} — {report['customers']} customers, seed {report['seed']}, "
        f"as_of {t['as_of']} (last event {t['last_event_at']}). World written in {report['seconds']['synthesize']} s, "
        f"ingested in {report['seconds']['ingest']} s; notebooks run "
        + ", ".join(f"{k} {v} s" for k, v in report["seconds"]["notebooks"].items()) + ".",
        "",
        f"Truth: {t['outcomes']['converted']} converted, {t['outcomes']['trial_expired']} trials expired, "
        f"{t['outcomes']['trial_running']} trials running (censored), {t['outcomes']['churned']} churned "
        f"({t['outcomes']['churned_more_than_150_days_after_signup']} of them more than 150 days after signup), "
        f"{t['outcomes']['paying_active']} still paying (censored). Personas: "
        + ", ".join(f"{k} {v}" for k, v in t["persona_counts"].items()) + ".",
        "",
        "Planted: " + "; ".join(f"{p['exposed']} ({p['outcome']}, true RR {p['true_risk_ratio']})" for p in t["planted"])
        + ". Null: plan, segment, payment_method, country and every other behaviour.",
        "",
        "| check | truth | measured | status | note |",
        "|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        note = str(r["note"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['check']} | {r['truth']} | {r['measured']} | {r['status']} | {note} |")
    lines += ["", "## Notebook cells that failed", ""]
    any_fail = False
    for nb, fails in report["failures"].items():
        for f in fails:
            any_fail = True
            lines.append(f"* `{nb}` cell {f['cell']} (`{f['code']}`): {f['error']}".replace("\n", " "))
    if not any_fail:
        lines.append("None.")
    lines += ["", "## Parameters the notebooks ran with", ""]
    for nb, params in report["parameters"].items():
        lines.append(f"* `{nb}`: " + ", ".join(f"{k}={v!r}" for k, v in params.items() if k not in ("db", "output_dir")))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="folder for the world and its store (default: a temporary folder)")
    ap.add_argument("--notebooks", default=",".join(NOTEBOOKS), help="notebooks to run (comma-separated)")
    ap.add_argument("--out", type=Path, default=RESULTS / "second_world.md")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="second-world-"))
    seconds: dict[str, Any] = {}
    t0 = time.perf_counter()
    world = synthesize_second_world(work / "world", n_customers=args.customers, seed=args.seed)
    seconds["synthesize"] = round(time.perf_counter() - t0, 1)
    db = work / "store.duckdb"
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    store = Store(db)
    try:
        results = ingest_folder(store, world.out_dir, source_kinds=world.source_kinds)
    finally:
        store.close()
    seconds["ingest"] = round(time.perf_counter() - t0, 1)
    truth = world.truth
    rows = store_rows(db, truth, results)
    namespaces: dict[str, dict[str, Any]] = {}
    seconds["notebooks"] = {}
    for nb in [n.strip() for n in args.notebooks.split(",") if n.strip()]:
        print(f"running {nb} ...", file=sys.stderr)
        namespaces[nb] = run_notebook(nb, db, world.definition_path)
        seconds["notebooks"][nb] = namespaces[nb]["_seconds"]
    if "01_journey_map" in namespaces:
        rows += funnel_rows(namespaces["01_journey_map"], truth)
    if "03_churn_drivers" in namespaces:
        ns = namespaces["03_churn_drivers"]
        churn = [p for p in truth["planted"] if p["outcome"] == "churn"]
        conv = [p for p in truth["planted"] if p["outcome"] == "conversion"]
        rows += driver_rows(ns.get("drivers"), f"churn drivers ({ns.get('outcome')}, window {ns.get('window_days')})", churn, truth, ns, "drivers")
        rows += driver_rows(ns.get("conversion_drivers"), f"conversion drivers (window {ns.get('conversion_window_days')})", conv, truth, ns, "conversion_drivers")
    if "02_cohorts_and_segments" in namespaces:
        rows += segment_rows(namespaces["02_cohorts_and_segments"], truth, db)
    report = {
        "when": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
        "customers": args.customers,
        "seed": args.seed,
        "seconds": seconds,
        "truth_summary": {k: v for k, v in truth.items() if k != "personas"},
        "rows": rows,
        "failures": {nb: ns["_failures"] for nb, ns in namespaces.items()},
        "warnings": {nb: ns.get("_warnings", [])[:40] for nb, ns in namespaces.items()},
        "parameters": {nb: ns["_parameters"] for nb, ns in namespaces.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(report), encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
