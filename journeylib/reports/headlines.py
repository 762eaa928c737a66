"""The headline findings of each report page: 3–5 full sentences built from its result tables.

Each function takes what its notebook already computed and returns sentences
that carry their number, interval and denominator, ready for
:func:`journeylib.reports.display.headline_cards`. Nothing is invented: a
sentence is only written when the row it reads exists; where the tables give
an association the sentence says so, never a cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from journeylib.reports.display import format_interval, format_number, format_p_value, format_percent, plain_p_values
from journeylib.words import plural, sentence

__all__ = [
    "alerts_findings",
    "cohorts_findings",
    "data_health_findings",
    "drivers_findings",
    "journey_map_findings",
    "risk_findings",
    "voice_findings",
]


def _date(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d") if value else "unknown"


def _first_clause(text: str) -> str:
    """Return the statement up to its first ``;`` as a sentence (a complete clause, not a cut)."""
    return sentence(plain_p_values(str(text).split("; ")[0]))


def data_health_findings(summary: Mapping[str, Any]) -> list[str]:
    """Sentences on what the store holds, from ``data_health_summary``.

    Parameters
    ----------
    summary : mapping
        What :meth:`journeylib.Journey.data_health_summary` returned (keys
        ``customers``, ``events``, ``sources``, ``first_event``,
        ``last_event``, ``weeks``, ``customers_without_events``,
        ``quarantined_rows``, ``top_quarantine_reason``, ``ingested_files``,
        ``files_not_reconciling``, ``orphan_events``; missing keys are skipped).

    Returns
    -------
    list of str
        Up to five sentences.
    """
    out = []
    if "events" in summary and "customers" in summary:
        sources = summary.get("sources") or []
        span = ""
        if summary.get("first_event") and summary.get("last_event"):
            span = f", from {_date(summary['first_event'])} to {_date(summary['last_event'])}"
            if summary.get("weeks"):
                span += f" ({plural(int(summary['weeks']), 'week')})"
        out.append(
            f"The store holds {plural(int(summary['events']), 'event')} of {plural(int(summary['customers']), 'customer')}"
            f" from {plural(len(sources), 'source')}{span}."
        )
    if "customers_without_events" in summary and summary.get("customers"):
        missing = int(summary["customers_without_events"])
        total = int(summary["customers"])
        out.append(
            "Every customer in scope has at least one event."
            if missing == 0
            else f"{plural(missing, 'customer')} of {total:,} ({format_percent(missing / total)}) have no event at all."
        )
    if "quarantined_rows" in summary:
        rows = int(summary["quarantined_rows"])
        reason = summary.get("top_quarantine_reason")
        out.append(
            "No row was refused at ingest."
            if rows == 0
            else f"{plural(rows, 'row')} were refused at ingest and quarantined; the most common reason: {reason}."
        )
    if "ingested_files" in summary:
        files = int(summary["ingested_files"])
        bad = int(summary.get("files_not_reconciling") or 0)
        out.append(
            f"All {plural(files, 'ingested file')} reconcile (read = loaded + duplicate + quarantined)."
            if bad == 0
            else f"{bad:,} of {plural(files, 'ingested file')} do not reconcile; check the reconciliation table."
        )
    if int(summary.get("orphan_events") or 0):
        out.append(f"{plural(int(summary['orphan_events']), 'event')} name a customer the customers table does not have.")
    return [sentence(s) for s in out][:5]


def journey_map_findings(
    funnel: pd.DataFrame, conformance: pd.DataFrame | None = None, friction: pd.DataFrame | None = None
) -> list[str]:
    """Sentences on the funnel, the happy path and the top friction points.

    Parameters
    ----------
    funnel : pandas.DataFrame
        What ``funnel_data`` returned (``stage``, ``stage_order``,
        ``converted``, ``dropped``, ``censored``, ``conversion_rate``,
        ``ci_low``, ``ci_high``; the first ``group`` is read).
    conformance : pandas.DataFrame, optional
        What ``conformance_data`` returned; its ``(whole path)`` row gives the
        happy-path share.
    friction : pandas.DataFrame, optional
        What ``friction_data`` returned; the first clause of the top two
        statements.

    Returns
    -------
    list of str
        Up to five sentences.
    """
    out: list[str] = []
    f = funnel[funnel["group"] == funnel["group"].iloc[0]] if "group" in funnel.columns and len(funnel) else funnel
    steps = f[f["stage_order"] > f["stage_order"].min()] if len(f) else f
    known = steps[(steps["converted"] + steps["dropped"]) > 0]
    if len(known):
        worst = known.sort_values("conversion_rate").iloc[0]
        n_known = int(worst["converted"] + worst["dropped"])
        out.append(
            f"The weakest step is into {worst['stage']}: {format_percent(worst['conversion_rate'])} of the "
            f"{n_known:,} customers whose outcome there is known made it "
            f"(95% CI {format_interval(worst['ci_low'], worst['ci_high'], kind='percent')}); "
            f"{plural(int(worst['censored']), 'customer')} still on the way are not counted as drop-offs."
        )
        best = known.sort_values("conversion_rate").iloc[-1]
        if best["stage"] != worst["stage"]:
            out.append(
                f"The strongest step is into {best['stage']}: {format_percent(best['conversion_rate'])} of "
                f"{int(best['converted'] + best['dropped']):,} "
                f"(95% CI {format_interval(best['ci_low'], best['ci_high'], kind='percent')})."
            )
    if conformance is not None and len(conformance):
        whole = conformance[conformance["stage_order"] < 0]
        if len(whole):
            row = whole.iloc[0]
            out.append(
                f"{format_percent(row['rate'])} of {int(row['eligible']):,} customers followed the intended happy path "
                f"(95% CI {format_interval(row['ci_low'], row['ci_high'], kind='percent')})."
            )
    if friction is not None and len(friction):
        out += [f"Friction: {_first_clause(s)}" for s in friction.sort_values("score", ascending=False)["statement"].head(2)]
    return [sentence(s) for s in out][:5]


def cohorts_findings(segment_outcomes: pd.DataFrame, *, alpha: float = 0.05) -> list[str]:
    """Sentences comparing the behavioural segments on each outcome, highest against lowest.

    Parameters
    ----------
    segment_outcomes : pandas.DataFrame
        What ``segment_outcomes_data`` returned (``cohort``, ``metric``,
        ``kind``, ``n``, ``value``, ``ci_low``, ``ci_high``, ``q_value``,
        ``status``).
    alpha : float, default 0.05
        The false-discovery rate a difference must meet to be called one.

    Returns
    -------
    list of str
        One sentence per metric with two or more estimated segments, at most five.
    """
    out = []
    ok = segment_outcomes[segment_outcomes["status"] == "ok"] if "status" in segment_outcomes.columns else segment_outcomes
    for metric, rows in ok.groupby("metric", sort=False):
        if len(rows) < 2:
            continue
        rows = rows.sort_values("value")
        hi, lo = rows.iloc[-1], rows.iloc[0]
        percent = str(hi.get("kind", "")) in ("proportion", "survival")
        kind = "percent" if percent else "number"
        value = format_percent if percent else format_number
        words = str(metric).replace("_", " ")
        q = hi.get("q_value")
        verdict = (
            f"q {format_p_value(q) if format_p_value(q).startswith('<') else '= ' + format_p_value(q)}"
            + (", a difference beyond chance" if pd.notna(q) and q <= alpha else ", within what chance could give")
        )
        out.append(
            f"{words.capitalize()}: {value(hi['value'])} in '{hi['cohort']}' (95% CI "
            f"{format_interval(hi['ci_low'], hi['ci_high'], kind=kind)}, n = {int(hi['n']):,}) vs {value(lo['value'])} in "
            f"'{lo['cohort']}' ({format_interval(lo['ci_low'], lo['ci_high'], kind=kind)}, n = {int(lo['n']):,}); {verdict}; "
            "an association, not a cause."
        )
    return [sentence(s) for s in out][:5]


def drivers_findings(lines: pd.DataFrame, summary: Mapping[str, Any] | None = None, *, top_n: int = 3) -> list[str]:
    """Sentences on the drivers analysis: who was analysed, then the strongest behaviours in words.

    Parameters
    ----------
    lines : pandas.DataFrame
        What ``driver_lines_data`` returned (column ``line``, strongest first).
    summary : mapping, optional
        What ``driver_summary`` returned (``outcome``, ``population``,
        ``events``, ``candidates``, ``significant``, ``alpha``).
    top_n : int, default 3
        Lines kept.

    Returns
    -------
    list of str
        Up to ``top_n + 1`` sentences.
    """
    out = []
    if summary and {"population", "events", "candidates", "significant"} <= set(summary):
        out.append(
            f"{int(summary['significant']):,} of {plural(int(summary['candidates']), 'candidate behaviour')} go with "
            f"{summary.get('outcome', 'the outcome')} beyond chance (q ≤ {summary.get('alpha', 0.05)}), among "
            f"{int(summary['population']):,} customers analysed, {int(summary['events']):,} of whom had the outcome; "
            "these are associations, not causes."
        )
    out += [plain_p_values(str(x)) for x in lines["line"].head(int(top_n))]
    return [sentence(s) for s in out][:5]


def risk_findings(
    metrics: pd.DataFrame | None, lead_summary: pd.DataFrame | None = None, scores: pd.DataFrame | None = None
) -> list[str]:
    """Sentences on the churn-risk model: how well it ranks, how early it warns, how many are at risk now.

    Parameters
    ----------
    metrics : pandas.DataFrame or None
        ``backtest_data(...).metrics`` (``model``, ``roc_auc`` with
        ``roc_auc_low``/``_high``, ``brier``, ``n_snapshots``,
        ``n_customers``, ``n_churned``); the first row is the model. None
        when the backtest could not be computed: a sentence says so, and
        *lead_summary* is then not read.
    lead_summary : pandas.DataFrame, optional
        ``lead_time_summary`` (one row: ``churners``, ``alerted``,
        ``recall``, ``median_lead_days`` with ``_low``/``_high``, ``precision``).
        None with a backtest: a sentence says the lead time was not measured.
    scores : pandas.DataFrame, optional
        The scored customers (``risk_band``).

    Returns
    -------
    list of str
        Up to four sentences.
    """
    out = []
    if metrics is None:
        out.append(
            "The out-of-time backtest could not be computed on this data, so the model's accuracy and lead time "
            "are not measured (see the note in the backtest section)."
        )
    elif len(metrics):
        m = metrics.iloc[0]
        out.append(
            f"On {int(m['n_snapshots']):,} out-of-time snapshots of {int(m['n_customers']):,} customers, the {m['model']} "
            f"model ranks a churner above a non-churner with AUC {format_number(m['roc_auc'], digits=2)} "
            f"(95% CI {format_interval(m['roc_auc_low'], m['roc_auc_high'])}); Brier score {format_number(m['brier'], digits=2)}."
        )
        if len(metrics) > 1:
            others = metrics.iloc[1:]
            best_other = others.sort_values("roc_auc").iloc[-1]
            out.append(
                f"For comparison, {best_other['model']} reaches AUC {format_number(best_other['roc_auc'], digits=2)} "
                f"(95% CI {format_interval(best_other['roc_auc_low'], best_other['roc_auc_high'])}) on the same snapshots."
            )
    if metrics is not None and lead_summary is None:
        out.append("The lead time could not be measured on this data (see the note in the lead-time section).")
    elif metrics is not None and lead_summary is not None and len(lead_summary):
        r = lead_summary.iloc[0]
        out.append(
            f"At the alert threshold, {int(r['alerted']):,} of {int(r['churners']):,} churners of the test period "
            f"({format_percent(r['recall'])}) were flagged a median {format_number(r['median_lead_days'], digits=2)} days "
            f"before churning (95% CI {format_interval(r['median_lead_low'], r['median_lead_high'])} days); "
            f"{format_percent(r['precision'])} of alerted snapshots were followed by churn."
        )
    if scores is not None and len(scores) and "risk_band" in scores.columns:
        counts = scores["risk_band"].value_counts()
        top = counts.index[0] if len(counts) else None
        bands = ", ".join(f"{int(n):,} {band}" for band, n in counts.items())
        if top is not None:
            out.append(f"Today {plural(len(scores), 'customer')} are scored: {bands}.")
    return [sentence(s) for s in out][:5]


def voice_findings(summary: Mapping[str, Any]) -> list[str]:
    """Sentences on the support tickets, from ``voc_summary``.

    Parameters
    ----------
    summary : mapping
        What :func:`journeylib.voice.summary.voc_summary` returned
        (``tickets``, ``tickets_scored``, ``share_negative``, ``emotions``,
        ``most_negative_stage``, ``spikes``, ``spike_list``, ``n_topics``).

    Returns
    -------
    list of str
        Up to five sentences.
    """
    out = []
    if summary.get("tickets_scored"):
        n = int(summary["tickets_scored"])
        out.append(
            f"{format_percent(summary.get('share_negative', float('nan')))} of the {n:,} scored tickets "
            f"(of {int(summary.get('tickets', n)):,}) read negative."
        )
    emotions = summary.get("emotions") or {}
    if emotions:
        ranked = sorted(emotions.items(), key=lambda kv: -float(kv[1]))
        out.append("Emotions: " + ", ".join(f"{name} {format_percent(share)}" for name, share in ranked) + " of scored tickets.")
    stage = (summary.get("most_negative_stage") or {}).get("all")
    if stage:
        out.append(f"Across all segments, {stage} is the stage whose tickets are most negative.")
    if "spikes" in summary:
        spikes = int(summary["spikes"])
        listed = "; ".join(str(s) for s in (summary.get("spike_list") or [])[:3])
        out.append(
            "No segment or stage had more tickets than expected (Benjamini–Hochberg controlled)."
            if spikes == 0
            else f"{plural(spikes, 'ticket spike')} stood out after false-discovery control: {listed}."
        )
    if summary.get("n_topics"):
        out.append(f"The tickets fall into {plural(int(summary['n_topics']), 'topic')}.")
    return [sentence(s) for s in out][:5]


def alerts_findings(alerts: pd.DataFrame, points: pd.DataFrame | None = None, *, as_of: Any = None, top_n: int = 3) -> list[str]:
    """Sentences on the worklist and the recommended intervention points.

    Parameters
    ----------
    alerts : pandas.DataFrame
        The alerts of the run (``customer_id``, ``severity``, ``holdout``).
    points : pandas.DataFrame, optional
        What ``intervention_points_data`` returned (column ``text``).
    as_of : date-like, optional
        The worklist's day.
    top_n : int, default 3
        Intervention sentences kept.

    Returns
    -------
    list of str
        Up to five sentences.
    """
    out = []
    day = f" as of {_date(as_of)}" if as_of is not None else ""
    if len(alerts):
        sev = alerts["severity"].value_counts() if "severity" in alerts.columns else pd.Series(dtype=int)
        parts = ", ".join(f"{int(n):,} {s}" for s, n in sev.items())
        held = int(alerts["holdout"].sum()) if "holdout" in alerts.columns else 0
        out.append(
            f"The rules raise {plural(len(alerts), 'alert')}{day} on {plural(alerts['customer_id'].nunique(), 'customer')}"
            + (f" ({parts})" if parts else "")
            + (f"; {held:,} are held out as the playbooks' comparison group" if held else "")
            + "."
        )
    else:
        out.append(f"The rules raise no alert{day}.")
    if points is not None and len(points) and "text" in points.columns:
        out += [plain_p_values(_first_sentence(t)) for t in points["text"].head(int(top_n))]
    return [sentence(s) for s in out][:5]


def _first_sentence(text: str) -> str:
    """Return the first sentence of *text* (up to the first ". " that ends a sentence)."""
    parts = str(text).split(". ")
    return parts[0] if len(parts) > 1 else str(text)
