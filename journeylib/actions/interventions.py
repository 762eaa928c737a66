"""Recommended intervention points: per segment, at which stage and day outreach should happen, with the evidence.

Three analyses each point at a moment in the journey; :func:`intervention_points_data`
puts them side by side, one row per segment and source, each citing its numbers
with their denominators and intervals:

``stall`` (from :func:`journeylib.journey.stages.stage_intervals_data`)
    Where stalls begin. For every stage with an exit, the **stall share** is the
    share of the customers whose outcome in the stage is known (progressed,
    dropped or churned in it) who dropped or churned there; customers still in
    the stage at ``as_of`` are censored and counted apart, never as stalls. The
    stage is tested against the segment's other stages pooled (two-sided pooled
    two-proportion z-test, Benjamini–Hochberg over every test of the call), and
    the segment's stall point is the **earliest** stage whose share is above the
    others' with a q-value at most ``alpha``. The **day** is the 75th percentile
    of days in the stage of the customers who moved on (the ``behind`` line of
    :func:`journeylib.journey.stages.progress_data`): by then three in four of
    those who progress have progressed. The row also gives the stall share of
    the known-outcome customers still in the stage after that day.
``risk`` (from :func:`journeylib.customers.risk.lead_time_data` and the snapshots)
    Where churn risk first rises before churn. For the churners of the risk
    backtest's test period whose risk crossed the alert threshold, the stage
    and days in it on the as-of day of their **first** alert (read from the
    snapshot of that day); the row names the stage most of them were in, with
    the share (Wilson interval), the median days in the stage and since signup
    at the alert, and the median lead time to churn (order-statistic interval).
``experiment`` (from :func:`journeylib.customers.experiments.experiment_effects_data`
or :func:`~journeylib.customers.experiments.experiment_segment_effects_data`)
    Where a randomised play changed an outcome in the customers' favour
    (progression up or churn down) with a p-value (or, per segment, a
    Benjamini–Hochberg q-value) below ``alpha`` and no sample-ratio mismatch.
    The stage and day are those at which the experiment's customers were
    assigned (the stage entered last by then, and days since signup).

Only the ``experiment`` rows speak of effects (``causal`` is True): they come from
randomised assignment. ``stall`` and ``risk`` rows are associations — where
customers who stall or churn were — and their text says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.stats import bh_qvalues, median_interval, two_proportion_z_test, wilson_interval
from journeylib.words import percent, plural, sentence

__all__ = ["ALL_SEGMENTS", "INTERVENTION_COLUMNS", "SOURCES", "intervention_points_data"]

#: The group label of rows computed over every segment together.
ALL_SEGMENTS = "all"
#: The sources of an intervention point, in the order rows are listed within a segment.
SOURCES: tuple[str, ...] = ("stall", "risk", "experiment")
#: The columns of :func:`intervention_points_data`, in order.
INTERVENTION_COLUMNS: tuple[str, ...] = (
    "segment", "source", "source_analysis", "stage", "stage_order", "day_in_stage", "day_since_signup", "day_basis",
    "measure", "value", "numerator", "denominator", "ci_low", "ci_high", "reference_measure", "reference",
    "reference_numerator", "reference_denominator", "difference", "difference_ci_low", "difference_ci_high", "p_value",
    "q_value", "stage_customers", "stage_base", "lead_days", "lead_ci_low", "lead_ci_high", "experiment", "variant",
    "causal", "note", "text",
)
_STALLED = ("dropped", "churned")
_KNOWN = ("progressed", "dropped", "churned")
_NO_STAGE = "(no stage entered)"


def _num(x: Any) -> str:
    return "n/a" if x is None or math.isnan(float(x)) else str(round(float(x)))


def _days(x: Any) -> str:
    return "n/a" if x is None or math.isnan(float(x)) else plural(round(float(x)), "day")


def _ci_pct(lo: float, hi: float) -> str:
    return f"95% CI {percent(lo)}–{percent(hi)}"


def _pp(x: float) -> str:
    return f"{x * 100:+.1f} pp"


def _empty_row() -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(INTERVENTION_COLUMNS, np.nan)
    row.update(stage="", day_basis="", measure="", reference_measure="", experiment="", variant="", causal=False, note="", text="")
    return row


def _wilson(k: int, n: int, alpha: float) -> tuple[float, float]:
    lo, hi = wilson_interval(np.array([k]), np.array([n]), alpha=alpha)
    return float(lo[0]), float(hi[0])


def _groups(segments: pd.Series) -> list[tuple[str, np.ndarray]]:
    seg = segments.astype(object).where(segments.notna(), "(no segment)").astype(str).to_numpy()
    out = [(str(s), seg == s) for s in sorted(set(seg))]
    return [*out, (ALL_SEGMENTS, np.ones(len(seg), dtype=bool))]


# -- stalls -------------------------------------------------------------------------------------------
def _stall_rows(iv: pd.DataFrame, names: Sequence[str], *, alpha: float, min_customers: int, notes: list[str]) -> list[dict[str, Any]]:
    last = len(names) - 1
    iv = iv[iv["stage_order"] < last]
    tests: list[dict[str, Any]] = []
    groups = _groups(iv["segment"])
    for group, mask in groups:
        g = iv[mask]
        known = g[g["status"].isin(_KNOWN)]
        counts = known.assign(stall=known["status"].isin(_STALLED)).groupby("stage_order")["stall"].agg(["sum", "count"])
        censored = g[g["status"] == "in_progress"].groupby("stage_order").size()
        for k, stalled, n in zip(counts.index.astype(int), counts["sum"], counts["count"], strict=True):
            other = counts.drop(index=k)
            o_stalled, o_n = int(other["sum"].sum()), int(other["count"].sum())
            testable = n >= min_customers and o_n >= min_customers
            p = two_proportion_z_test(int(stalled), int(n), o_stalled, o_n)[1] if testable else np.nan
            tests.append({"group": group, "stage_order": int(k), "stalled": int(stalled), "known": int(n), "other_stalled": o_stalled,
                          "other_known": o_n, "censored": int(censored.get(k, 0)), "p": p})
    if not tests:
        notes.append("stall: no customer has a known outcome in a stage with an exit; no stall point")
        return []
    t = pd.DataFrame(tests)
    t["q"] = bh_qvalues(t["p"])
    t["share"] = t["stalled"] / t["known"]
    t["other_share"] = t["other_stalled"] / t["other_known"].where(t["other_known"] > 0)
    untested = int(t["p"].isna().sum())
    if untested:
        notes.append(f"stall: {plural(untested, 'segment × stage')} with fewer than {min_customers} known outcomes (or others to compare) "
                     f"{'was' if untested == 1 else 'were'} not tested")
    done_all = iv[iv["status"] == "progressed"]
    rows = []
    for group, mask in groups:
        cand = t[(t["group"] == group) & (t["q"] <= alpha) & (t["share"] > t["other_share"])].sort_values("stage_order")
        if cand.empty:
            notes.append(f"stall: in {group} no stage's stall share is above the other stages' at q ≤ {alpha}; no stall point")
            continue
        c = cand.iloc[0]
        k = int(c["stage_order"])
        g = iv[mask & (iv["stage_order"] == k).to_numpy()]
        done = g[g["status"] == "progressed"]["days_in_stage"]
        basis_group = group
        if len(done) < min_customers:
            done = done_all[done_all["stage_order"] == k]["days_in_stage"]
            basis_group = ALL_SEGMENTS
        day = float(np.quantile(done, 0.75)) if len(done) else np.nan
        known = g[g["status"].isin(_KNOWN)]
        late = known[known["days_in_stage"] > day] if not math.isnan(day) else known.iloc[0:0]
        late_stalled = int(late["status"].isin(_STALLED).sum())
        entry = (pd.to_datetime(g["entered_at"], utc=True) - pd.to_datetime(g["signup_at"], utc=True)) / pd.Timedelta(days=1)
        lo, hi = _wilson(int(c["stalled"]), int(c["known"]), alpha)
        late_lo, late_hi = _wilson(late_stalled, len(late), alpha) if len(late) else (np.nan, np.nan)
        row = _empty_row()
        row.update(
            segment=group, source="stall", source_analysis="stage_intervals_data", stage=names[k], stage_order=k, day_in_stage=day,
            day_since_signup=float(entry.median() + day) if len(entry) and not math.isnan(day) else np.nan,
            day_basis=(f"75th percentile of days in the stage of the {plural(len(done), 'customer')} who moved on"
                       f"{'' if basis_group == group else ' (every segment: fewer than ' + str(min_customers) + ' in ' + group + ')'}"),
            measure="stall share: dropped or churned in the stage / known outcome in it",
            value=float(c["share"]), numerator=int(c["stalled"]), denominator=int(c["known"]), ci_low=lo, ci_high=hi,
            reference_measure="stall share of the segment's other stages (pooled)", reference=float(c["other_share"]),
            reference_numerator=int(c["other_stalled"]), reference_denominator=int(c["other_known"]),
            difference=float(c["share"] - c["other_share"]), p_value=float(c["p"]), q_value=float(c["q"]),
            stage_customers=late_stalled, stage_base=len(late),
            note=(f"{plural(int(c['censored']), 'customer')} still in the stage (censored, not counted as stalls); "
                  f"after day {_num(day)} in it, {late_stalled} of {len(late)} known outcomes "
                  f"were stalls ({percent(late_stalled / len(late)) if len(late) else 'n/a'}"
                  f"{', ' + _ci_pct(late_lo, late_hi) if len(late) else ''})"),
        )
        since = "" if math.isnan(row["day_since_signup"]) else f" (about day {_num(row['day_since_signup'])} after signup)"
        row["text"] = sentence(
            f"In {group}, stalls begin in {names[k]}: {c['stalled']} of {c['known']} customers with a known outcome there dropped "
            f"or churned ({percent(c['share'])}, {_ci_pct(lo, hi)}) against {percent(c['other_share'])} "
            f"({c['other_stalled']} of {c['other_known']}) in the other stages (q = {c['q']:.3g}). "
            f"Three in four who move on have done so by day {_num(day)} in the stage"
            f"{since}; "
            f"reach out to customers still there by then. This is where stalled customers were, not a proof that outreach "
            f"moves them"
        )
        rows.append(row)
    return rows


# -- risk ---------------------------------------------------------------------------------------------
def _risk_rows(lead: pd.DataFrame, snapshots: pd.DataFrame, names: Sequence[str], *, alpha: float, min_customers: int,
               notes: list[str]) -> list[dict[str, Any]]:
    need = {"customer_id", "as_of", "segment", "stage", "days_in_stage", "tenure_days"}
    missing = sorted(need - set(snapshots.columns))
    if missing:
        msg = f"intervention_points_data(snapshots=...): the snapshot table lacks columns {missing}; pass Snapshots.data of build_snapshots"
        raise ValueError(msg)
    seg_of = snapshots.sort_values("as_of").drop_duplicates("customer_id")[["customer_id", "segment"]]
    lt = lead.merge(seg_of, on="customer_id", how="left")
    snap = snapshots[["customer_id", "as_of", "stage", "days_in_stage", "tenure_days"]].rename(columns={"as_of": "alert_as_of"})
    lt = lt.merge(snap, on=["customer_id", "alert_as_of"], how="left")
    unmatched = int((lt["alerted"] & lt["stage"].isna() & lt["days_in_stage"].isna()).sum())
    if unmatched:
        notes.append(f"risk: {plural(unmatched, 'alerted churner')} had no snapshot on the alert day; left out")
    order = {s: i for i, s in enumerate(names)}
    rows = []
    for group, mask in _groups(lt["segment"]):
        g = lt[mask]
        churners = len(g)
        alerted = g[g["alerted"] & ~(g["stage"].isna() & g["days_in_stage"].isna())]
        if alerted.empty:
            notes.append(f"risk: in {group}, none of the {plural(churners, 'churner')} of the test period was alerted; no risk point")
            continue
        stage = alerted["stage"].astype(object).where(alerted["stage"].notna(), _NO_STAGE).astype(str)
        counts = stage.value_counts()
        top = sorted(counts.index, key=lambda s: (-counts[s], order.get(s, len(names))))[0]
        at = alerted[stage == top]
        lo, hi = _wilson(len(at), len(alerted), alpha)
        r_lo, r_hi = _wilson(len(alerted), churners, alpha)
        day, _, _ = median_interval(at["days_in_stage"])
        tenure, _, _ = median_interval(at["tenure_days"])
        lead_med, lead_lo, lead_hi = median_interval(at["lead_days"])
        small = len(alerted) < min_customers
        row = _empty_row()
        row.update(
            segment=group, source="risk", source_analysis="lead_time_data", stage=top, stage_order=order.get(top, np.nan),
            day_in_stage=day, day_since_signup=tenure,
            day_basis=f"median days in the stage and since signup on the first alert of the {plural(len(at), 'churner')} alerted there",
            measure="alerted churners whose first alert came in this stage / alerted churners",
            value=len(at) / len(alerted), numerator=len(at), denominator=len(alerted), ci_low=lo, ci_high=hi,
            reference_measure="alerted churners / churners of the test period (recall)", reference=len(alerted) / churners,
            reference_numerator=len(alerted), reference_denominator=churners, stage_customers=len(at), stage_base=len(alerted),
            lead_days=lead_med, lead_ci_low=lead_lo, lead_ci_high=lead_hi,
            note=(f"risk threshold {float(g['threshold'].iloc[0]):.3g} ({g['model'].iloc[0]} model); recall {percent(len(alerted) / churners)} "
                  f"({_ci_pct(r_lo, r_hi)})" + (f"; only {plural(len(alerted), 'alerted churner')}: read with care" if small else "")),
        )
        row["text"] = sentence(
            f"In {group}, churn risk first crossed the alert threshold in {top} for {len(at)} of {len(alerted)} alerted churners "
            f"({percent(len(at) / len(alerted))}, {_ci_pct(lo, hi)}), at a median of day {_num(day)} in the stage "
            f"(day {_num(tenure)} after signup) and a median {_days(lead_med)} before churn "
            f"(95% CI {_num(lead_lo)}–{_days(lead_hi)}); {len(alerted)} of {churners} churners of the test period "
            f"were alerted. This is an association: a warning sign seen before churn, not evidence that reaching out then prevents it"
        )
        rows.append(row)
    return rows


# -- experiments --------------------------------------------------------------------------------------
def _assignment_moments(outcomes: pd.DataFrame, iv: pd.DataFrame) -> pd.DataFrame:
    a = outcomes[["experiment", "variant", "customer_id", "segment", "assigned_at"]].copy()
    a["assigned_at"] = pd.to_datetime(a["assigned_at"], utc=True)
    ent = iv[["customer_id", "stage", "stage_order", "entered_at", "signup_at"]].copy()
    ent["entered_at"] = pd.to_datetime(ent["entered_at"], utc=True)
    ent = ent.dropna(subset=["entered_at"]).sort_values("entered_at")
    a = a.sort_values("assigned_at")
    m = pd.merge_asof(a, ent, left_on="assigned_at", right_on="entered_at", by="customer_id", direction="backward")
    signup = iv.drop_duplicates("customer_id").set_index("customer_id")["signup_at"]
    m["signup_at"] = pd.to_datetime(m["customer_id"].map(signup), utc=True)
    m["day_since_signup"] = (m["assigned_at"] - m["signup_at"]).dt.total_seconds() / 86400.0
    m["day_in_stage"] = (m["assigned_at"] - m["entered_at"]).dt.total_seconds() / 86400.0
    m["stage"] = m["stage"].astype(object).where(m["stage"].notna(), _NO_STAGE)
    return m


def _experiment_rows(effects: pd.DataFrame, outcomes: pd.DataFrame | None, iv: pd.DataFrame, names: Sequence[str], *,
                     alpha: float, srm_alpha: float, notes: list[str]) -> list[dict[str, Any]]:
    per_segment = "segment" in effects.columns
    p_col = "q_value" if "q_value" in effects.columns else "p_value"
    beneficial = np.where(effects["metric"] == "churn", effects["difference"] < 0, effects["difference"] > 0)
    srm_ok = effects["srm_p_value"].isna() | (effects["srm_p_value"] >= srm_alpha) if "srm_p_value" in effects.columns else True
    shown = effects[beneficial & (effects[p_col] < alpha) & srm_ok]
    if len(shown) < len(effects):
        notes.append(f"experiment: {len(effects) - len(shown)} of {plural(len(effects), 'comparison')} show no effect in the customers' "
                     f"favour at {p_col} < {alpha} (or failed the sample-ratio check); not intervention points")
    moments = _assignment_moments(outcomes, iv) if outcomes is not None else None
    if moments is None:
        notes.append("experiment: no experiment outcomes given, so the stage and day of assignment are not known")
    order = {s: i for i, s in enumerate(names)}
    rows = []
    for e in shown.to_dict("records"):
        group = str(e["segment"]) if per_segment else ALL_SEGMENTS
        row = _empty_row()
        n_c, n_v = int(e["n_control"]), int(e["n_variant"])
        k_c = int(e["events_control"]) if "events_control" in e else round(float(e["rate_control"]) * n_c)
        k_v = int(e["events_variant"]) if "events_variant" in e else round(float(e["rate_variant"]) * n_v)
        lo, hi = _wilson(k_v, n_v, alpha)
        stage, where = "", "at assignment"
        if moments is not None:
            m = moments[(moments["experiment"] == e["experiment"]) & moments["variant"].isin([e["variant"], e["control"]])]
            if per_segment:
                m = m[m["segment"].astype(str) == group]
            if len(m):
                counts = m["stage"].value_counts()
                stage = sorted(counts.index, key=lambda s: (-counts[s], order.get(s, len(names))))[0]
                at = m[m["stage"] == stage]
                day, _, _ = median_interval(at["day_in_stage"])
                since, _, _ = median_interval(at["day_since_signup"])
                row.update(stage=stage, stage_order=order.get(stage, np.nan), day_in_stage=day, day_since_signup=since,
                           stage_customers=len(at), stage_base=len(m),
                           day_basis=f"median days in the stage and since signup at assignment of the {plural(len(at), 'assigned customer')} in it")
                where = f"sent in {stage} (median day {_num(day)} in the stage, day {_num(since)} after signup)"
        metric = str(e.get("metric_definition", e.get("metric_text", e["metric"])))
        row.update(
            segment=group, source="experiment",
            source_analysis="experiment_segment_effects_data" if per_segment else "experiment_effects_data",
            measure=f"{e['metric']} rate of {e['variant']}: {metric}", value=float(e["rate_variant"]), numerator=k_v,
            denominator=n_v, ci_low=lo, ci_high=hi, reference_measure=f"{e['metric']} rate of {e['control']}",
            reference=float(e["rate_control"]), reference_numerator=k_c, reference_denominator=n_c,
            difference=float(e["difference"]), difference_ci_low=float(e["ci_low"]), difference_ci_high=float(e["ci_high"]),
            p_value=float(e["p_value"]), q_value=float(e["q_value"]) if per_segment else np.nan,
            experiment=str(e["experiment"]), variant=str(e["variant"]), causal=True,
            note=f"randomised against {e['control']}; minimum detectable effect {_pp(float(e['mde']))}" if "mde" in e else "",
        )
        stat = f"q = {e['q_value']:.3g}" if per_segment else f"p = {e['p_value']:.3g}"
        verb = "cut" if e["metric"] == "churn" else "raised"
        row["text"] = sentence(
            f"In {group}, {e['variant']} of the randomised experiment {e['experiment']}, {where}, {verb} the {e['metric']} rate "
            f"({metric}) from {percent(e['rate_control'])} ({k_c} of {n_c}) to {percent(e['rate_variant'])} ({k_v} of {n_v}): "
            f"{_pp(float(e['difference']))} (95% CI {_pp(float(e['ci_low']))} to {_pp(float(e['ci_high']))}, {stat})"
        )
        rows.append(row)
    return rows


def intervention_points_data(
    intervals: pd.DataFrame,
    *,
    definition: JourneyDefinition,
    lead: pd.DataFrame | None = None,
    snapshots: pd.DataFrame | None = None,
    experiment_effects: pd.DataFrame | None = None,
    experiment_outcomes: pd.DataFrame | None = None,
    alpha: float = 0.05,
    srm_alpha: float = 0.001,
    min_customers: int = 20,
) -> pd.DataFrame:
    """Return per segment the stage and day outreach should happen, from stalls, risk lead time and experiments.

    See the module docstring for how each source picks its stage and day.
    Every segment gets its rows and so does ``all`` (every segment together).

    Parameters
    ----------
    intervals : pandas.DataFrame
        What :func:`journeylib.journey.stages.stage_intervals_data` returned
        (every segment: the segments are read from its ``segment`` column).
    definition : JourneyDefinition
        The journey definition of *intervals* (stage order; the last stage has no exit).
    lead : pandas.DataFrame, optional
        What :func:`journeylib.customers.risk.lead_time_data` returned; needs *snapshots*.
        Without it there are no ``risk`` rows.
    snapshots : pandas.DataFrame, optional
        ``Snapshots.data`` of :func:`journeylib.customers.snapshots.build_snapshots`
        (the snapshots the backtest of *lead* was built from): the stage, days
        in it and tenure on each alert day.
    experiment_effects : pandas.DataFrame, optional
        What :func:`journeylib.customers.experiments.experiment_effects_data`
        (rows for ``all``) or :func:`~journeylib.customers.experiments.experiment_segment_effects_data`
        (rows per segment, read by their q-value) returned. Without it there are no ``experiment`` rows.
    experiment_outcomes : pandas.DataFrame, optional
        What :func:`journeylib.customers.experiments.experiment_outcomes_data`
        returned for the same experiments: when the customers were assigned.
    alpha : float, default 0.05
        Level of the intervals and the threshold of the p- and q-values.
    srm_alpha : float, default 0.001
        An experiment whose sample-ratio p-value is below this is not read.
    min_customers : int, default 20
        A stage is tested for stalls with at least this many known outcomes
        in it and in the other stages; the stall day uses the segment's own
        progressed customers when there are this many, else every segment's.
        Fewer alerted churners than this mark a ``risk`` row's note.

    Returns
    -------
    pandas.DataFrame
        One row per segment (and ``all``) and source that has a point, with
        the columns of :data:`INTERVENTION_COLUMNS`:

        ``segment``, ``source`` (``stall``, ``risk``, ``experiment``), ``source_analysis``
            The group, the kind of evidence and the function it comes from.
        ``stage``, ``stage_order``, ``day_in_stage``, ``day_since_signup``, ``day_basis``
            When to reach out: the stage, days since entering it and since
            signup, and how the day was measured (see the module docstring).
        ``measure``, ``value``, ``numerator``, ``denominator``, ``ci_low``, ``ci_high``
            The headline number: ``stall`` — stall share (dropped or churned /
            known outcome in the stage); ``risk`` — share of the alerted
            churners first alerted in the stage; ``experiment`` — the variant's
            rate (events / customers of the arm). Wilson interval.
        ``reference_measure``, ``reference``, ``reference_numerator``, ``reference_denominator``
            What it is read against: the segment's other stages pooled; the
            recall (alerted churners / churners of the test period); the
            control arm's rate.
        ``difference``, ``difference_ci_low``, ``difference_ci_high``
            Value − reference (``stall`` and ``experiment``); the interval is
            the experiment's Newcombe interval (NaN for the others).
        ``p_value``, ``q_value``
            ``stall``: z-test and Benjamini–Hochberg over every stall test of
            the call; ``experiment``: the read-out's p-value and, per segment, its q-value.
        ``stage_customers``, ``stage_base``
            ``stall``: known outcomes still in the stage after the day that
            were stalls, of all known outcomes still in it after the day;
            ``risk``: churners first alerted in the stage, of the alerted;
            ``experiment``: assigned customers who were in the stage, of the assigned.
        ``lead_days``, ``lead_ci_low``, ``lead_ci_high``
            ``risk``: median days from the first alert to churn with its
            order-statistic interval.
        ``experiment``, ``variant``
            ``experiment`` rows only.
        ``causal``
            True only for ``experiment`` rows (randomised).
        ``note``, ``text``
            Caveats with counts (censored customers, small samples), and one
            plain-English paragraph citing the numbers.

        ``attrs["notes"]`` lists what was left out and why (segments without a
        significant stall, comparisons without an effect, untested stages).

    Raises
    ------
    ValueError
        If *alpha* or *srm_alpha* is not strictly between 0 and 1, *lead* is
        given without *snapshots*, or a table lacks its columns.
    EmptyResultError
        If no source gives a single point (the notes say why).

    Examples
    --------
    >>> iv = journey.run(stage_intervals_data)  # doctest: +SKIP
    >>> intervention_points_data(iv, definition=journey.definition, lead=lead, snapshots=snapshots.data)  # doctest: +SKIP
    """
    for name, v in (("alpha", alpha), ("srm_alpha", srm_alpha)):
        if not 0 < v < 1:
            msg = f"intervention_points_data: {name} must be strictly between 0 and 1; got {v!r}"
            raise ValueError(msg)
    need = {"customer_id", "stage_order", "status", "days_in_stage", "segment", "entered_at", "signup_at"}
    missing = sorted(need - set(intervals.columns))
    if missing:
        msg = (f"intervention_points_data(intervals=...): the table lacks columns {missing}; "
               "pass what journeylib.journey.stages.stage_intervals_data returned")
        raise ValueError(msg)
    if lead is not None and snapshots is None:
        msg = "intervention_points_data: lead was given without snapshots; pass Snapshots.data of the backtest's snapshots"
        raise ValueError(msg)
    names = list(definition.stage_names)
    notes: list[str] = []
    rows = _stall_rows(intervals, names, alpha=alpha, min_customers=min_customers, notes=notes)
    if lead is not None and snapshots is not None:
        rows += _risk_rows(lead, snapshots, names, alpha=alpha, min_customers=min_customers, notes=notes)
    else:
        notes.append("risk: no lead-time table given; no risk points")
    if experiment_effects is not None and len(experiment_effects):
        rows += _experiment_rows(experiment_effects, experiment_outcomes, intervals, names, alpha=alpha, srm_alpha=srm_alpha, notes=notes)
    else:
        notes.append("experiment: no experiment read-out given; no experiment points")
    if not rows:
        msg = "intervention_points_data: no source gives an intervention point: " + "; ".join(notes)
        raise EmptyResultError(msg)
    out = pd.DataFrame(rows, columns=list(INTERVENTION_COLUMNS))
    seg_order = {s: i for i, s in enumerate(sorted(set(out["segment"]) - {ALL_SEGMENTS}))} | {ALL_SEGMENTS: len(out)}
    out = out.sort_values(["segment", "source"], key=lambda c: c.map(seg_order) if c.name == "segment" else c.map(SOURCES.index),
                          kind="mergesort").reset_index(drop=True)
    small = out[(out["source"] == "risk") & (out["denominator"] < min_customers)]
    if len(small):
        msg = (f"intervention_points_data: {plural(len(small), 'risk point')} rest on fewer than {min_customers} alerted churners "
               f"({', '.join(small['segment'])}); read them with care.")
        warnings.warn(msg, StatisticalWarning, stacklevel=2)
    out.attrs["notes"] = notes
    return out
