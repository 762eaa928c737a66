"""Grounded insights: plain sentences built from result-table rows, ranked, with wording guardrails and optional LLM rewriting.

Every sentence is made from **one row** of a result table (a funnel step, a
friction point, a driver, a success indicator, an intervention point, a
group comparison, a drift item, a KPI change) and cites the statistic, its
95% interval and the customers behind it. Guardrails:

* **No causal words for associations.** Drivers, friction points and group
  comparisons are observational: their sentences say "customers who ...
  churned 2.1× as often as ..." or "... is associated with ...", never
  "causes", "drives", "leads to", "increases" (:func:`causal_words` finds
  them; :func:`insights_data` raises if a template ever produced one).
* **Hedges when the interval is wide.** A ratio whose interval spans more
  than a factor of ``wide_ratio`` (default 3), or a share whose interval is
  wider than ``wide_share`` (default 20 points), is prefixed "Tentatively
  (the interval is wide): ".
* **Minimum support.** A row whose smaller side has fewer than
  ``min_support`` customers (default 30) gives no sentence; the number left
  out is in the ``insights_notes`` of the result.

**Ranking.** ``score = effect × ln(1 + support)``: ``effect`` is the absolute
log of the ratio the row reports (risk ratio, friction ratio, stage drop-off
``−ln(conversion)``, a change's ``ln(current / previous)``, a drift item's
``ln(value / threshold)``), or the absolute Hedges' g of a group comparison;
``support`` is the smaller number of customers the row compares. ``rank``
orders all sentences by score; ``topic_rank`` within their topic.

**LLM rewriting** (:func:`rewrite_insights`, off unless an endpoint is
configured in :class:`LLMConfig`) sends only the sentences, aggregates with
personal data masked (:func:`journeylib.voice.pii.mask_pii`), to an
OpenAI-compatible ``/chat/completions`` endpoint, keeps a rewrite only when
it has every number of the original and no causal word, and falls back to
the template sentences on any error, timeout or malformed answer. The prompt
sent is returned for the report to save.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeylib.voice.pii import mask_pii
from journeylib.words import percent, ratio

__all__ = [
    "CAUSAL_WORDS",
    "INSIGHT_COLUMNS",
    "LLMConfig",
    "RewriteResult",
    "causal_words",
    "insights_data",
    "rewrite_insights",
    "topic_sentences",
]

#: Columns of :func:`insights_data`.
INSIGHT_COLUMNS: list[str] = [
    "rank", "topic", "topic_rank", "sentence", "statistic", "value", "ci_low", "ci_high", "support", "effect", "score",
    "hedged", "source", "key",
]

#: Words and phrases that claim a cause; association sentences never use them.
CAUSAL_WORDS: tuple[str, ...] = (
    "cause", "causes", "caused", "causing", "leads to", "led to", "drives", "driven by", "results in", "resulted in",
    "because of", "due to", "increases", "decreases", "reduces", "improves", "boosts", "makes customers", "impact of",
    "effect of", "thanks to",
)
_CAUSAL_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in CAUSAL_WORDS) + r")\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_OUTCOME_VERBS = {"churn": "churned", "conversion": "converted", "expansion": "expanded", "renewal": "renewed"}


def causal_words(text: str) -> list[str]:
    """Return the causal words and phrases of :data:`CAUSAL_WORDS` found in *text* (lower case, in order).

    Parameters
    ----------
    text : str
        A sentence.

    Returns
    -------
    list of str
        The matches; empty when the sentence makes no causal claim.

    Examples
    --------
    >>> causal_words("Setup drives retention and leads to renewals.")
    ['drives', 'leads to']
    >>> causal_words("Customers who completed setup churned 0.2× as often.")
    []
    """
    return [m.group(1).lower() for m in _CAUSAL_RE.finditer(text)]


def _i(x: Any) -> int:
    return int(float(x))


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _num(x: float) -> str:
    """Format a ratio with two significant digits, keeping one decimal below 10 (5.0, 0.84, 12)."""
    if not np.isfinite(x):
        return "not bounded"
    return f"{x:.2f}" if abs(x) < 1 else f"{x:.1f}" if abs(x) < 10 else f"{x:.0f}"


def _ci_ratio(lo: float, hi: float) -> str:
    return f"95% CI {_num(lo)}–{_num(hi)}" if np.isfinite(lo) and np.isfinite(hi) else "95% CI not bounded"


def _ci_share(lo: float, hi: float) -> str:
    return f"95% CI {percent(lo)}–{percent(hi)}"


def _row(topic: str, sentence: str, statistic: str, value: float, lo: float, hi: float, support: int, effect: float,
         hedged: bool, source: str, key: str) -> dict[str, Any]:
    if hedged:
        sentence = "Tentatively (the interval is wide): " + sentence[:1].lower() + sentence[1:]
    score = abs(effect) * math.log1p(max(support, 0)) if np.isfinite(effect) else 0.0
    return {"topic": topic, "sentence": sentence, "statistic": statistic, "value": value, "ci_low": lo, "ci_high": hi,
            "support": int(support), "effect": abs(effect) if np.isfinite(effect) else np.nan, "score": score,
            "hedged": hedged, "source": source, "key": key}


def _wide_ratio(lo: float, hi: float, wide_ratio: float) -> bool:
    return not (np.isfinite(lo) and np.isfinite(hi) and lo > 0) or hi / lo > wide_ratio


def _funnel(funnel: pd.DataFrame, min_support: int, wide_share: float, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    data = funnel[funnel["group"].astype(str) == "all"] if "group" in funnel.columns and (funnel["group"] == "all").any() else funnel
    data = data.sort_values("stage_order")
    for r in data.iloc[1:].itertuples(index=False):
        n = _i(r.eligible)
        if n < min_support:
            skipped[0] += 1
            continue
        rate, lo, hi = _f(r.conversion_rate), _f(r.ci_low), _f(r.ci_high)
        censored = int(getattr(r, "censored", 0) or 0)
        s = (f"Of {n:,} customers who could enter {r.stage}, {_i(r.converted):,} did ({percent(rate)}, {_ci_share(lo, hi)})"
             + (f"; {censored:,} are still on their way and are not counted as drop-offs." if censored else "."))
        rows.append(_row("stage conversion", s, "conversion_rate", rate, lo, hi, n, -math.log(max(rate, 1e-6)),
                         hi - lo > wide_share, "funnel", str(r.stage)))
    return rows


def _friction(friction: pd.DataFrame, min_support: int, wide_ratio: float, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    for r in friction.itertuples(index=False):
        n = _i(r.customers)
        if n < min_support:
            skipped[0] += 1
            continue
        statement = str(r.statement)
        head, _, evidence = statement.partition("): ")
        first = (evidence.split("; ")[0] if evidence else statement).rstrip(". ")
        if first.count("(") > first.count(")"):  # the clause was cut inside its parenthesis
            first += ")" * (first.count("(") - first.count(")"))
        place = head.split(" (score")[0]
        # the strongest single evidence item: its ratio and interval are in the clause itself
        m = re.search(r"ratio ([\d.]+), 95% CI ([\d.]+)–([\d.]+)", first)
        value, lo, hi = (float(m.group(1)), float(m.group(2)), float(m.group(3))) if m else (np.nan, np.nan, np.nan)
        s = f"Friction for {place}: customers {first} ({n:,} customers in the stage; an association in observational data)."
        rows.append(_row("friction", s, "ratio", value, lo, hi, n, math.log(value) if value > 0 else np.nan,
                         bool(m) and _wide_ratio(lo, hi, wide_ratio), "friction", f"{r.group}|{r.stage}"))
    return rows


def _drivers(drivers: pd.DataFrame, topic: str, min_support: int, wide_ratio: float, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    data = drivers
    if "significant" in data.columns:
        data = data[data["significant"].fillna(False).astype(bool)]
    if "selected" in data.columns:
        data = data[data["selected"].fillna(False).astype(bool)]
    for r in data.itertuples(index=False):
        n1, n0 = _i(r.n_exposed), _i(r.n_reference)
        if min(n1, n0) < min_support:
            skipped[0] += 1
            continue
        rr, lo, hi = _f(r.rr), _f(r.rr_ci_low), _f(r.rr_ci_high)
        verb = _OUTCOME_VERBS.get(str(r.outcome), f"reached {r.outcome}")
        s = (f"Customers {r.exposure} {verb} {ratio(rr)} as often as customers {r.reference} "
             f"({percent(_f(r.rate_exposed))} vs {percent(_f(r.rate_reference))}; risk ratio {_num(rr)}, {_ci_ratio(lo, hi)}; "
             f"{n1:,} vs {n0:,} customers).")
        rows.append(_row(topic, s, "risk_ratio", rr, lo, hi, min(n1, n0), math.log(rr) if rr > 0 else np.nan,
                         _wide_ratio(lo, hi, wide_ratio), "drivers", str(r.feature)))
    return rows


def _interventions(points: pd.DataFrame, min_support: int, wide_share: float, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    for r in points.itertuples(index=False):
        n = int(_f(r.denominator)) if np.isfinite(_f(r.denominator)) else 0
        if n < min_support:
            skipped[0] += 1
            continue
        value, ref = _f(r.value), _f(r.reference)
        lo, hi = _f(r.ci_low), _f(r.ci_high)
        effect = math.log(value / ref) if value > 0 and ref > 0 else np.nan
        rows.append(_row("intervention points", str(r.text), str(r.measure).split(":")[0], value, lo, hi, n, effect,
                         np.isfinite(hi - lo) and hi - lo > wide_share, "intervention_points", f"{r.segment}|{r.source}|{r.stage}"))
    return rows


def _comparisons(comparisons: pd.DataFrame, min_support: int, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    data = comparisons[comparisons["significant"].fillna(False).astype(bool)] if "significant" in comparisons.columns else comparisons
    for r in data.itertuples(index=False):
        n = min(_i(r.n_a), _i(r.n_b))
        if n < min_support:
            skipped[0] += 1
            continue
        g, lo, hi = _f(r.hedges_g), _f(r.g_ci_low), _f(r.g_ci_high)
        s = f"{r.statement} ({_i(r.n_a):,} vs {_i(r.n_b):,} customers; a difference between the groups, which does not say why.)"
        rows.append(_row("power users vs churners", s, "hedges_g", g, lo, hi, n, g, False, "comparisons", str(r.feature)))
    return rows


def _drift(drift: pd.DataFrame, min_support: int, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    for r in drift[drift["flagged"].astype(bool)].itertuples(index=False):
        n = min(_i(r.n_current), _i(r.n_reference))
        if n < min_support:
            skipped[0] += 1
            continue
        value, threshold = _f(r.value), _f(r.threshold)
        s = (f"Recent sign-ups differ from earlier ones in {r.item} ({str(r.statistic).replace('_', ' ')} {value:.2g}, above the "
             f"{threshold:.2g} threshold; q = {_f(r.q_value):.2g}; {_i(r.n_current):,} recent vs {_i(r.n_reference):,} "
             f"earlier customers): {r.detail}.")
        effect = math.log(value / threshold) if value > 0 and threshold > 0 else np.nan
        rows.append(_row("drift", s, str(r.statistic), value, np.nan, np.nan, n, effect, False, "drift", f"{r.kind}|{r.item}"))
    return rows


def _changes(changes: pd.DataFrame, min_support: int, skipped: list[int]) -> list[dict[str, Any]]:
    rows = []
    for r in changes[changes["flagged"].astype(bool)].itertuples(index=False):
        n = min(_i(r.current_n), _i(r.previous_n))
        if n < min_support:
            skipped[0] += 1
            continue
        cur, prev = _f(r.current_value), _f(r.previous_value)
        item = str(r.item) if isinstance(r.item, str) else ""
        what = f"{str(r.kpi).replace('_', ' ')}{f' ({item})' if item else ''}"
        if r.unit == "share":
            moved = f"from {percent(prev)} to {percent(cur)} (difference {_f(r.difference) * 100:+.1f} points, 95% CI {_f(r.ci_low) * 100:+.1f} to {_f(r.ci_high) * 100:+.1f})"
        elif r.unit == "customers":
            moved = f"from {prev:,.0f} to {cur:,.0f} customers (share difference {_f(r.difference) * 100:+.1f} points, 95% CI {_f(r.ci_low) * 100:+.1f} to {_f(r.ci_high) * 100:+.1f})"
        else:
            moved = f"from {prev:.3g} to {cur:.3g} {r.unit} (difference {_f(r.difference):+.3g}, 95% CI {_f(r.ci_low):+.3g} to {_f(r.ci_high):+.3g})"
        s = f"Since the last run, {what} moved {moved}; {_i(r.previous_n):,} then vs {_i(r.current_n):,} now, q = {_f(r.q_value):.2g}."
        effect = math.log(cur / prev) if cur > 0 and prev > 0 else np.nan
        rows.append(_row("changes", s, "difference", _f(r.difference), _f(r.ci_low), _f(r.ci_high), n, effect, False,
                         "changes", f"{r.kpi}|{r.item}"))
    return rows


def insights_data(
    *,
    funnel: pd.DataFrame | None = None,
    friction: pd.DataFrame | None = None,
    drivers: pd.DataFrame | None = None,
    indicators: pd.DataFrame | None = None,
    interventions: pd.DataFrame | None = None,
    comparisons: pd.DataFrame | None = None,
    drift: pd.DataFrame | None = None,
    changes: pd.DataFrame | None = None,
    min_support: int = 30,
    wide_ratio: float = 3.0,
    wide_share: float = 0.2,
) -> pd.DataFrame:
    """Build ranked, grounded sentences from the result tables given.

    Parameters
    ----------
    funnel : pandas.DataFrame, optional
        :func:`journeylib.journey.stages.funnel_data` (the ``all`` group): one sentence per stage after the first.
    friction : pandas.DataFrame, optional
        :func:`journeylib.journey.friction.friction_data`: one sentence per friction point (its strongest evidence).
    drivers : pandas.DataFrame, optional
        :func:`journeylib.customers.drivers.drivers_data` (churn or another outcome): significant selected rows.
    indicators : pandas.DataFrame, optional
        :func:`journeylib.customers.driver_views.success_indicators_data`: trial → paid success indicators.
    interventions : pandas.DataFrame, optional
        :func:`journeylib.actions.interventions.intervention_points_data`: its ``text`` with the row's numbers.
    comparisons : pandas.DataFrame, optional
        :func:`journeylib.customers.segments.power_users_vs_churners_data`: significant rows.
    drift : pandas.DataFrame, optional
        ``Drift.table`` of :func:`journeylib.customers.drift.drift_data`: flagged rows.
    changes : pandas.DataFrame, optional
        :func:`journeylib.reports.changes.changes_data`: flagged rows.
    min_support : int, default 30
        Fewest customers on the smaller side of a row for it to give a sentence.
    wide_ratio : float, default 3.0
        A ratio whose interval's upper / lower bound exceeds this is hedged.
    wide_share : float, default 0.2
        A share whose interval is wider than this (20 points) is hedged.

    Returns
    -------
    pandas.DataFrame
        One row per sentence, best first, columns:

        ``rank``
            1 = highest ``score`` over every topic.
        ``topic``
            ``stage conversion``, ``friction``, ``churn drivers``, ``success indicators``,
            ``intervention points``, ``power users vs churners``, ``drift``, ``changes``.
        ``topic_rank``
            Rank within the topic.
        ``sentence``
            The sentence, citing the statistic, its interval and the customers.
        ``statistic``, ``value``, ``ci_low``, ``ci_high``
            The statistic the sentence rests on (NaN bound: not given by the source).
        ``support``
            Customers on the smaller side of the comparison (or the denominator).
        ``effect``
            The effect size used for ranking (module docstring).
        ``score``
            ``effect × ln(1 + support)``.
        ``hedged``
            True when the sentence carries the wide-interval hedge.
        ``source``, ``key``
            The table and the row (feature, stage, item) the sentence comes from.

        ``attrs["notes"]`` lists the rows left out for too little support.

    Raises
    ------
    ValueError
        If ``min_support`` is below 1, or a template produced a causal word (a bug).

    Examples
    --------
    >>> funnel = pd.DataFrame({"group": ["all", "all"], "stage": ["Trial", "Paid"], "stage_order": [0, 1],
    ...     "eligible": [100, 100], "converted": [100, 40], "censored": [0, 10], "conversion_rate": [1.0, 0.4],
    ...     "ci_low": [0.96, 0.31], "ci_high": [1.0, 0.5]})
    >>> insights_data(funnel=funnel)["sentence"].iloc[0]
    'Of 100 customers who could enter Paid, 40 did (40%, 95% CI 31%–50%); 10 are still on their way and are not counted as drop-offs.'
    """
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or min_support < 1:
        msg = f"insights_data: min_support must be a positive whole number of customers; got {min_support!r}"
        raise ValueError(msg)
    skipped = [0]
    rows: list[dict[str, Any]] = []
    if funnel is not None and len(funnel):
        rows += _funnel(funnel, min_support, wide_share, skipped)
    if friction is not None and len(friction):
        rows += _friction(friction, min_support, wide_ratio, skipped)
    if drivers is not None and len(drivers):
        rows += _drivers(drivers, "churn drivers" if (drivers.get("outcome", pd.Series(["churn"])) == "churn").all() else "drivers",
                         min_support, wide_ratio, skipped)
    if indicators is not None and len(indicators):
        rows += _drivers(indicators, "success indicators", min_support, wide_ratio, skipped)
    if interventions is not None and len(interventions):
        rows += _interventions(interventions, min_support, wide_share, skipped)
    if comparisons is not None and len(comparisons):
        rows += _comparisons(comparisons, min_support, skipped)
    if drift is not None and len(drift):
        rows += _drift(drift, min_support, skipped)
    if changes is not None and len(changes):
        rows += _changes(changes, min_support, skipped)
    out = pd.DataFrame(rows, columns=[c for c in INSIGHT_COLUMNS if c not in ("rank", "topic_rank")])
    for s, src in zip(out["sentence"], out["source"], strict=True):
        found = causal_words(s)
        if found:
            msg = f"insights_data: the {src} sentence uses the causal word(s) {found}, which no association may use: {s!r}"
            raise ValueError(msg)
    out = out.sort_values("score", ascending=False, kind="mergesort").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.insert(2, "topic_rank", out.groupby("topic").cumcount() + 1)
    out = out[INSIGHT_COLUMNS]
    out.attrs["notes"] = (
        [f"{skipped[0]} result row(s) gave no sentence: fewer than {min_support} customers on a side."] if skipped[0] else []
    )
    return out


def topic_sentences(insights: pd.DataFrame, topic: str | None = None, *, column: str = "sentence", top_n: int = 5) -> list[str]:
    """Return the best sentences of one topic (or of all), or one sentence saying there is none.

    Parameters
    ----------
    insights : pandas.DataFrame
        :func:`insights_data` (or :class:`RewriteResult` ``insights``, with ``column="text"``).
    topic : str, optional
        A ``topic`` value; None means every topic.
    column : str, default "sentence"
        The column holding the sentences.
    top_n : int, default 5
        Most sentences returned, best first.

    Returns
    -------
    list of str
        Up to ``top_n`` sentences; when the topic has none, one sentence saying so (no finding had enough
        customers or was clear of noise), so a page never shows an empty box.

    Examples
    --------
    >>> topic_sentences(pd.DataFrame({"topic": ["drift"], "sentence": ["A."], "rank": [1]}), "friction")
    ['No friction finding is stated: none had enough customers on each side and a result clear of noise.']
    """
    rows = insights if topic is None else insights[insights["topic"] == topic]
    found = rows.sort_values("rank")[column].head(top_n).tolist() if len(rows) else []
    if found:
        return [str(x) for x in found]
    what = f"{topic} finding" if topic else "finding"
    return [f"No {what} is stated: none had enough customers on each side and a result clear of noise."]


# -- optional LLM rewriting ----------------------------------------------------------------------
@dataclass(frozen=True)
class LLMConfig:
    """Where the optional rewriting goes: an OpenAI-compatible chat-completions endpoint.

    Attributes
    ----------
    base_url : str
        E.g. ``http://127.0.0.1:8000/v1``; empty means rewriting is off (the default).
    model : str
        The model name the endpoint expects.
    api_key_env : str
        Name of the environment variable holding the key (the key itself is never stored or saved).
    timeout_seconds : float
        Give up (and keep the templates) after this long.
    """

    base_url: str = ""
    model: str = ""
    api_key_env: str = "JOURNEYLIB_LLM_API_KEY"
    timeout_seconds: float = 20.0

    @property
    def enabled(self) -> bool:
        """True when an endpoint and a model are named."""
        return bool(self.base_url.strip()) and bool(self.model.strip())


@dataclass(frozen=True)
class RewriteResult:
    """What :func:`rewrite_insights` did.

    Attributes
    ----------
    insights : pandas.DataFrame
        The input with ``text`` (the sentence shown: rewritten or the template) and ``rewritten`` (bool).
    prompt : pandas.DataFrame
        One row to save with the report: ``endpoint``, ``model``, ``messages`` (the JSON sent, PII masked),
        ``status`` (``off``, ``ok``, ``fallback``), ``reason``.
    status : str
        ``off`` (not configured), ``ok`` (at least one sentence rewritten) or ``fallback`` (templates kept).
    reason : str
        Why the templates were kept, in words (empty when ``ok`` or ``off``).
    """

    insights: pd.DataFrame
    prompt: pd.DataFrame
    status: str
    reason: str


_SYSTEM_PROMPT = (
    "You edit sentences for a customer-success executive summary. Rewrite each sentence to read more smoothly. "
    "Keep every number, interval and customer count exactly as written. Never claim a cause: do not use words such as "
    "causes, drives, leads to, increases, reduces, improves, because of or due to. Answer with a JSON array of strings, "
    "one per input sentence, in the same order, and nothing else."
)


def _numbers(text: str) -> list[str]:
    return sorted(_NUMBER_RE.findall(text))


def rewrite_insights(insights: pd.DataFrame, *, config: LLMConfig | None = None, names: tuple[str, ...] = ()) -> RewriteResult:
    """Optionally rewrite the sentences with an LLM, keeping the templates on any failure.

    Only the sentences are sent, each masked with :func:`journeylib.voice.pii.mask_pii` (e-mail addresses,
    phone numbers, person names and the given *names*). A rewrite is kept only when it holds exactly the
    numbers of the masked original and no causal word (:func:`causal_words`); otherwise that sentence keeps
    its template. An HTTP error, a timeout, or an answer that is not a JSON array of as many strings keeps
    every template.

    Parameters
    ----------
    insights : pandas.DataFrame
        The result of :func:`insights_data` (its ``sentence`` column).
    config : LLMConfig, optional
        The endpoint; None or an unconfigured one means off.
    names : tuple of str, default ()
        Known names (customers, people) to mask as well.

    Returns
    -------
    RewriteResult
        The insights with ``text`` and ``rewritten``, the prompt record and the status.

    Examples
    --------
    >>> res = rewrite_insights(pd.DataFrame({"sentence": ["Of 10 customers, 4 did (40%)."]}))
    >>> res.status, res.insights["text"].tolist()
    ('off', ['Of 10 customers, 4 did (40%).'])
    """
    out = insights.copy()
    out["text"] = out["sentence"]
    out["rewritten"] = False
    config = config or LLMConfig()
    if not config.enabled:
        prompt = pd.DataFrame([{"endpoint": "", "model": "", "messages": "", "status": "off", "reason": "no endpoint configured"}])
        return RewriteResult(out, prompt, "off", "")
    masked = [str(mask_pii(s, names=names)) for s in out["sentence"]]
    messages = [
        {"role": "system", "content": _SYSTEM_PROMPT},
        {"role": "user", "content": json.dumps(masked, ensure_ascii=False)},
    ]
    url = config.base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": config.model, "messages": messages, "temperature": 0}).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(config.api_key_env, "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    reason = ""
    rewrites: list[Any] | None = None
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=config.timeout_seconds) as response:
            answer = json.loads(response.read().decode("utf-8"))
        content = answer["choices"][0]["message"]["content"]
        rewrites = json.loads(content)
        if not isinstance(rewrites, list) or len(rewrites) != len(masked) or not all(isinstance(x, str) for x in rewrites):
            reason = f"the endpoint's answer was not a JSON array of {len(masked)} strings"
            rewrites = None
    except urllib.error.HTTPError as exc:
        reason = f"the endpoint {url} answered HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = f"the endpoint {url} could not be reached or timed out ({type(exc).__name__})"
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        reason = f"the endpoint's answer could not be read ({type(exc).__name__}: {exc})"
    kept = 0
    if rewrites is not None:
        texts, done = out["text"].tolist(), out["rewritten"].tolist()
        for i, (orig, new) in enumerate(zip(masked, rewrites, strict=True)):
            if _numbers(new) == _numbers(orig) and not causal_words(new) and new.strip():
                texts[i], done[i] = new.strip(), True
                kept += 1
        out["text"], out["rewritten"] = texts, done
        if kept < len(masked):
            reason = f"{len(masked) - kept} of {len(masked)} rewrites changed a number or used a causal word and were not used"
    status = "ok" if kept else "fallback"
    if status == "fallback" and not reason:
        reason = "no rewrite could be used"
    prompt = pd.DataFrame([{
        "endpoint": url, "model": config.model, "messages": json.dumps(messages, ensure_ascii=False), "status": status,
        "reason": reason,
    }])
    return RewriteResult(out, prompt, status, reason)
