"""The dashboards' landing page: every dashboard with the headline numbers of the latest report run.

``journeylib dashboard`` opens on this page (served at ``/`` by
:mod:`journeylib.reports.voila_app`, in the Voila process itself: no kernel is
started for it). It lists the notebooks of the served folder, each with its
title, a link to its dashboard (``/voila/render/<name>.ipynb``) and the
headline numbers its latest report run saved in
``<reports>/latest/<notebook>/artifacts/summary.json``
(:func:`journeylib.reports.artifacts.write_artifacts`). Nothing here knows a
notebook by name: the headlines are the summary's plain-English lines (keys
ending in ``line``) and its scalar numbers, formatted for reading.
:func:`latest_risk_scores` gives the customer 360 page the churn-risk
report's score table.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from journeylib.reports.artifacts import ARTIFACTS_DIR, SUMMARY_FILE

__all__ = [
    "HEADLINES_PER_PAGE",
    "REPORTS_ENV",
    "dashboard_pages_data",
    "format_headline",
    "landing_html",
    "latest_risk_scores",
    "resolve_reports_dir",
]

#: The environment variable naming the reports folder (set for the server and kernels by ``journeylib dashboard``).
REPORTS_ENV = "JOURNEYLIB_REPORTS"
#: Headline figures shown per dashboard.
HEADLINES_PER_PAGE = 6
#: The file of the churn-risk report's score table among a notebook's artifacts.
RISK_SCORES_FILE = "risk_scores.parquet"
_SHARE_WORDS = ("share", "rate", "ratio_of", "proportion")


def resolve_reports_dir(reports_dir: str | os.PathLike[str] | None = None, *, notebooks_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the reports folder: *reports_dir*, else ``$JOURNEYLIB_REPORTS``, else ``reports`` next to the notebooks folder.

    Parameters
    ----------
    reports_dir : str or os.PathLike, optional
        An explicit folder.
    notebooks_dir : str or os.PathLike, optional
        The notebooks folder; its sibling ``reports`` is the last resort
        (else ``./reports``).

    Returns
    -------
    pathlib.Path
        The absolute folder (it may not exist: no report has run yet).
    """
    if reports_dir:
        return Path(reports_dir).expanduser().resolve()
    if os.environ.get(REPORTS_ENV):
        return Path(os.environ[REPORTS_ENV]).expanduser().resolve()
    if notebooks_dir is not None:
        return (Path(notebooks_dir).expanduser().resolve().parent / "reports").resolve()
    return Path("reports").resolve()


def _label(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def format_headline(key: str, value: Any) -> str | None:
    """Return a summary entry as reading text, or None when it is not a headline (a list, a mapping, an empty value).

    Parameters
    ----------
    key : str
        The summary key (``customers``, ``outcome_rate``, ``top_line``).
    value : object
        Its value.

    Returns
    -------
    str or None
        ``"Customers: 2,000"``; a share (key with ``share``/``rate``, value
        in 0–1) as ``"Outcome rate: 25.1%"``; other numbers with 3
        significant digits; sentences (keys ending in ``line``) whole, as
        they are; other texts longer than 400 characters are left out.

    Examples
    --------
    >>> format_headline("outcome_rate", 0.2506393861892583)
    'Outcome rate: 25.1%'
    >>> format_headline("customers", 2000)
    'Customers: 2,000'
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if key.endswith("line"):  # a headline sentence: shown whole, never cut
            return text or None
        if not text or key in ("segment", "plan", "as_of", "definition") or len(text) > 400:
            return None
        return f"{_label(key)}: {text}"
    if isinstance(value, int):
        return f"{_label(key)}: {value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if any(w in key for w in _SHARE_WORDS) and 0 <= value <= 1:
            return f"{_label(key)}: {value:.1%}"
        return f"{_label(key)}: {value:,.3g}" if abs(value) < 1e6 else f"{_label(key)}: {value:,.0f}"
    return None


def _first_sentence(key: str, value: Any) -> str | None:
    """Return the first of a list of sentences (e.g. ranked friction points), labelled with the list's length."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        return None
    first = value[0].strip()
    if len(first) < 40 or len(first) > 700:
        return None
    return f"{_label(key)} (1 of {len(value)}): {first}"


def _headlines(summary: dict[str, Any], limit: int) -> list[str]:
    lines = [t for k, v in summary.items() if k.endswith("line") and (t := format_headline(k, v))]
    lines += [t for k, v in summary.items() if (t := _first_sentence(k, v))]
    skip = {"sample_n", "random_state", "alpha", "min_support", "n_bootstrap"}
    numbers = [t for k, v in summary.items() if not k.endswith("line") and k not in skip and (t := format_headline(k, v))]
    return (lines + numbers)[:limit]


def _title(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        first = next(c for c in nb.get("cells", []) if c.get("cell_type") == "markdown")
        text = "".join(first.get("source", "")).strip().splitlines()[0]
    except (OSError, ValueError, StopIteration, IndexError):
        return path.stem
    return text.lstrip("#").strip() or path.stem


def dashboard_pages_data(
    notebooks_dir: str | os.PathLike[str], reports_dir: str | os.PathLike[str] | None = None, *, limit: int = HEADLINES_PER_PAGE
) -> pd.DataFrame:
    """List the dashboards of a notebooks folder with the headline numbers of the latest report run.

    Parameters
    ----------
    notebooks_dir : str or os.PathLike
        The served folder of ``.ipynb`` files.
    reports_dir : str or os.PathLike, optional
        The reports folder (see :func:`resolve_reports_dir`); its ``latest``
        run is read.
    limit : int, default 6
        Headlines per dashboard.

    Returns
    -------
    pandas.DataFrame
        One row per notebook, by name: ``notebook`` (file stem), ``title``
        (the first markdown line), ``url`` (``voila/render/<file>``,
        relative to the server root), ``run_id`` (of the latest run, empty
        when none), ``summary_at`` (UTC time the summary was written, NaT when
        none), ``headlines`` (list of str; empty when the notebook has no
        summary in the latest run).
    """
    folder = Path(notebooks_dir).expanduser().resolve()
    latest = resolve_reports_dir(reports_dir, notebooks_dir=folder) / "latest"
    run_id = latest.resolve().name if latest.exists() else ""
    rows = []
    for path in sorted(folder.glob("*.ipynb")):
        summary_path = latest / path.stem / ARTIFACTS_DIR / SUMMARY_FILE
        summary: dict[str, Any] = {}
        at: pd.Timestamp | None = None
        if summary_path.is_file():
            try:
                loaded = json.loads(summary_path.read_text(encoding="utf-8"))
                summary = loaded if isinstance(loaded, dict) else {}
                at = pd.Timestamp(dt.datetime.fromtimestamp(summary_path.stat().st_mtime, tz=dt.UTC))
            except (OSError, ValueError):
                summary = {}
        rows.append({"notebook": path.stem, "title": _title(path), "url": f"voila/render/{path.name}",
                     "run_id": run_id if summary else "", "summary_at": at, "headlines": _headlines(summary, limit)})
    frame = pd.DataFrame(rows, columns=["notebook", "title", "url", "run_id", "summary_at", "headlines"])
    frame["summary_at"] = pd.to_datetime(frame["summary_at"], utc=True)
    return frame


def landing_html(pages: pd.DataFrame, *, base_url: str = "/") -> str:
    """Return the landing page: one card per dashboard with its link and headlines.

    Parameters
    ----------
    pages : pandas.DataFrame
        What :func:`dashboard_pages_data` returned.
    base_url : str, default "/"
        The server's base URL (links are relative to it).

    Returns
    -------
    str
        A complete HTML document with inline style only (no script, no
        font or file from anywhere), every value escaped. Each card has the
        class ``journeylib-dashboard-card`` and its link the class
        ``journeylib-dashboard-link``.
    """
    e = html.escape
    base = base_url if base_url.endswith("/") else base_url + "/"
    cards = []
    for r in pages.to_dict("records"):
        headlines = [str(h) for h in r["headlines"]]
        if headlines:
            at = r["summary_at"]
            when = "" if pd.isna(at) else f" on {pd.Timestamp(at):%Y-%m-%d %H:%M} UTC"
            items = "".join(f"<li>{e(h)}</li>" for h in headlines)
            body = f'<ul class="journeylib-headlines">{items}</ul><p class="journeylib-run">From report run {e(str(r["run_id"]))}{e(when)}.</p>'
        else:
            body = '<p class="journeylib-run">No headline numbers: this notebook has no summary in the latest report run (run <code>journeylib report</code>).</p>'
        cards.append(
            f'<section class="journeylib-dashboard-card" data-notebook="{e(str(r["notebook"]))}">'
            f'<h2><a class="journeylib-dashboard-link" href="{e(base + str(r["url"]))}">{e(str(r["title"]))}</a></h2>{body}</section>'
        )
    style = (
        "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#1f2328}"
        "section{border:1px solid #d0d7de;border-radius:6px;padding:.4em 1.2em;margin:1em 0}"
        "h2{font-size:1.15em}a{color:#0b5cad}li{margin:.25em 0}.journeylib-run{color:#57606a;font-size:.9em}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>journeylib dashboards</title>'
        f"<style>{style}</style></head><body><h1>journeylib dashboards</h1>"
        "<p>Each dashboard opens with its controls and headline first; the numbers below come from the latest report run. "
        f'The plain file list is at <a href="{e(base)}voila/tree">voila/tree</a>.</p>'
        + "".join(cards)
        + "</body></html>"
    )


def latest_risk_scores(reports_dir: str | os.PathLike[str] | None = None, *, notebook: str = "04_churn_risk") -> pd.DataFrame | None:
    """Return the risk score table of the latest report run, or None when there is none.

    Parameters
    ----------
    reports_dir : str or os.PathLike, optional
        The reports folder (see :func:`resolve_reports_dir`).
    notebook : str, default "04_churn_risk"
        The notebook whose artifacts hold ``risk_scores.parquet``.

    Returns
    -------
    pandas.DataFrame or None
        The table as the churn-risk report saved it (``customer_id``,
        ``risk``, ``risk_band``, ``reasons``, ...), or None.
    """
    path = resolve_reports_dir(reports_dir) / "latest" / notebook / ARTIFACTS_DIR / RISK_SCORES_FILE
    if not path.is_file():
        return None
    return pd.read_parquet(path)
