"""Report pages read as briefs: the formatters and brief tables, headline cards, notes, and a scan of the demo suite's HTML.

The unit tests check :mod:`journeylib.reports.display` with hand-made values.
The scan (marked ``notebooks`` and ``slow``) runs the demo suite
(``parameters/demo.yaml``) once on the session's 200-customer world and reads
every report page: no cut-off text, no kernel temp path, no raw dict, no e-mail
address, no traceback or printed warning, no six-decimal float or scientific
p-value in the text, a "Notes on the data" section, headline cards first,
navigation and the glossary.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylib.reports.display import (
    HEADLINE_PENDING,
    NO_FINDINGS,
    BriefTable,
    brief_table,
    column_kind,
    format_interval,
    format_number,
    format_p_value,
    format_percent,
    headline_cards,
    headline_slot,
    notes_section,
    plain_p_values,
    readable_header,
)

ROOT = Path(__file__).resolve().parents[1]


# -- formatters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "text"),
    [(0.4213, "42%"), (0.04213, "4.2%"), (0.004213, "0.42%"), (1.0, "100%"), (0.0, "0%"), (0.995, "100%"),
     (0.0999, "10%"), (float("nan"), "–"), (None, "–")],
)  # fmt: skip
def test_format_percent(share: float, text: str) -> None:
    assert format_percent(share) == text


@pytest.mark.parametrize(
    ("p", "text"),
    [(3.2e-7, "< 0.001"), (0.000999, "< 0.001"), (0.001, "0.001"), (0.01234, "0.012"), (0.5, "0.5"), (1.0, "1"),
     (np.float64(0.0456), "0.046"), (float("nan"), "–")],
)  # fmt: skip
def test_format_p_value(p: float, text: str) -> None:
    assert format_p_value(p) == text


def test_format_p_value_rejects_values_outside_0_1() -> None:
    with pytest.raises(ValueError, match=r"format_p_value: a p- or q-value lies in 0–1, got 1\.5"):
        format_p_value(1.5)


@pytest.mark.parametrize(
    ("x", "text"),
    [(1234567, "1,234,567"), (np.int64(42), "42"), (0.123456, "0.123"), (1.23456, "1.23"), (12.3456, "12.3"),
     (12345.678, "12,346"), (-0.000123456, "-0.0001"), (0.000428, "0.0004"), (0.00123, "0.0012"), (2.0, "2"), (float("inf"), "∞"), (float("nan"), "–"),
     (2.2e-17, "0"), (3.5e-6, "< 0.0001")],
)  # fmt: skip
def test_format_number_has_no_scientific_notation_and_2_3_significant_digits(x: float, text: str) -> None:
    assert format_number(x) == text


def test_format_interval() -> None:
    assert format_interval(1.234, 3.456) == "1.23–3.46"
    assert format_interval(0.12, 0.347, kind="percent") == "12%–35%"
    assert format_interval(np.nan, 3) == "–"
    assert format_interval(2.2e-19, 0.0027, kind="percent") == "0%–0.27%"  # a Wilson bound at 0, not 2.2e-17%


def test_plain_p_values_rewrites_scientific_notation_in_sentences() -> None:
    assert plain_p_values("beyond chance (q = 1.97e-18).") == "beyond chance (q < 0.001)."
    assert plain_p_values("p=3e-07; q = 2e-3") == "p < 0.001; q = 0.002"
    assert plain_p_values("about 1.5e+04 tickets") == "about 15,000 tickets"
    assert plain_p_values("(q=<0.001)") == "(q < 0.001)"  # a bound written after "=" reads as one
    assert plain_p_values("Hedges' g 0.32; q = 0.000235: beyond chance; mean 0.9732089235516016") == (
        "Hedges' g 0.32; q < 0.001: beyond chance; mean 0.973"
    )


def test_readable_header_and_column_kind() -> None:
    assert readable_header("conversion_rate") == "Conversion rate"
    assert readable_header("customer_id") == "Customer ID"
    assert readable_header("q_value") == "q-value"
    assert readable_header("roc_auc") == "Roc AUC"
    assert column_kind("share_of_total", pd.Series([0.2, 0.8])) == "percent"
    assert column_kind("rate_ratio", pd.Series([1.5, 2.5])) == "number"  # not a share: above 1
    assert column_kind("p_value", pd.Series([1e-9, 0.2])) == "p"
    assert column_kind("n", pd.Series([3, 4])) == "integer"
    assert column_kind("when", pd.Series(pd.to_datetime(["2024-01-01"]))) == "date"
    assert column_kind("file", pd.Series(["/data/x/a.csv"])) == "path"


# -- brief tables ----------------------------------------------------------------------------------


def _drivers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": ["SMB", "Mid-market"],
            "customers": [12345, 56],
            "conversion_rate": [0.4213, 0.0511],
            "conversion_rate_ci_low": [0.40, 0.03],
            "conversion_rate_ci_high": [0.45, 0.07],
            "hazard_ratio": [1.234567, 4.2],
            "ci_low": [1.1, 3.0],
            "ci_high": [1.4, 5.5],
            "p_value": [1e-9, 0.0432],
            "statement": [
                "Mid-market customers, Trial Started → Onboarding Completed: raised 0.26 tickets per customer-week "
                "(ratio 4.0, 95% CI 3.3–4.9, q = 1.2e-09); ask jane.doe@example.com",
                None,
            ],
        },
        index=[7, 3],
    )


def test_brief_table_formats_cells_merges_intervals_and_drops_the_index(tmp_path: Path) -> None:
    table = brief_table(_drivers(), output_dir=tmp_path, name="drivers")
    assert isinstance(table, BriefTable)
    assert list(table.frame.columns) == [
        "Segment", "Customers", "Conversion rate", "Conversion rate 95% CI", "Hazard ratio", "95% CI", "p-value",
        "Statement",
    ]  # fmt: skip
    first = table.frame.iloc[0].to_dict()
    assert first["Customers"] == "12,345"
    assert first["Conversion rate"] == "42%"
    assert first["Conversion rate 95% CI"] == "40%–45%"
    assert first["Hazard ratio"] == "1.23"
    assert first["95% CI"] == "1.1–1.4"
    assert first["p-value"] == "< 0.001"
    # text is whole (never cut), e-mail masked, its p-value written out
    assert first["Statement"].endswith("(ratio 4.0, 95% CI 3.3–4.9, q < 0.001); ask [EMAIL]")
    assert table.frame.iloc[1]["Statement"] == "–"
    html = table.to_html()
    assert "…" not in html
    assert ">7<" not in html  # no index column
    assert ">3<" not in html
    assert 'href="tables/drivers.csv">Full table (CSV)</a>' in html
    full = pd.read_csv(tmp_path / "tables" / "drivers.csv")
    assert list(full.columns) == list(_drivers().columns)  # every column, bounds included
    assert full["hazard_ratio"].iloc[0] == pytest.approx(1.234567)
    assert "jane.doe@example.com" not in (tmp_path / "tables" / "drivers.csv").read_text()


def test_brief_table_chosen_columns_headers_formats_and_rows(tmp_path: Path) -> None:
    frame = pd.DataFrame({"stage": [f"s{i}" for i in range(60)], "rate": np.linspace(0, 1, 60), "x": 1.0})
    table = brief_table(frame, columns={"stage": "Stage", "rate": "Share reached"}, formats={"rate": "number"})
    assert list(table.frame.columns) == ["Stage", "Share reached"]
    assert len(table.frame) == 50
    assert table.caption == "The first 50 of 60 rows."
    assert table.csv_href == ""  # no report folder: nothing written, no link
    assert table.frame["Share reached"].iloc[-1] == "0.831"
    with pytest.raises(KeyError, match=r"brief_table: columns \['nope'\] are not in the table; it has \['stage', 'rate', 'x'\]"):
        brief_table(frame, columns=["nope"])
    with pytest.raises(ValueError, match=r"unknown formats rate='money'; allowed: percent, p"):
        brief_table(frame, formats={"rate": "money"})


def test_use_brief_tables_shows_frames_series_and_dicts_as_tables(tmp_path: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from journeylib.reports.display import use_brief_tables

    shell = InteractiveShell.instance()
    try:
        use_brief_tables(tmp_path)

        def html_of(obj: object) -> str:
            return shell.display_formatter.format(obj)[0]["text/html"]

        shown = html_of({"ari_mean": 0.9732089235516016, "n_bootstrap": 20, "names": ["a", "b"]})
        assert "<td>Ari mean</td><td>0.973</td>" in shown
        assert "<td>Names</td><td>a, b</td>" in shown
        assert "{" not in shown
        series = html_of(pd.Series([113, 102], index=pd.Index(["high", "medium"], name="severity"), name="count"))
        assert "<th>Severity</th><th>Count</th>" in series
        frame = html_of(pd.DataFrame({"share": [0.123456]}))
        assert '<td class="num">12%</td>' in frame
        assert 'href="tables/table_02.csv"' in frame  # the series was table_01
        assert (tmp_path / "tables" / "table_02.csv").is_file()
    finally:
        use_brief_tables("")
        InteractiveShell.clear_instance()


def test_headline_cards_need_full_sentences() -> None:
    cards = headline_cards(["42% of 1,204 trials converted (95% CI 39%–45%).", "", "Churn was 4.2× as common (n = 300)."])
    assert cards.findings == ("42% of 1,204 trials converted (95% CI 39%–45%).", "Churn was 4.2× as common (n = 300).")
    assert cards.to_html().count('class="jl-card"') == 2
    assert headline_cards(["Stalls begin here (q = 3.31e-06; p = 0.000234)."]).findings == (
        "Stalls begin here (q < 0.001; p < 0.001).",
    )
    with pytest.raises(ValueError, match="must be full sentences"):
        headline_cards(["Mid-market customers, Trial Started → Onboardi…"])
    assert headline_cards(["", " "]).findings == (NO_FINDINGS,)  # nothing to state: the page says so


def test_a_dashboard_headline_slot_shows_the_first_cards_at_the_top_and_later_cards_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import IPython.display

    shown: list[dict[str, str]] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    first = headline_cards(["42% of 1,204 trials converted (95% CI 39%–45%)."], title="Headline findings")
    second = headline_cards(["Churn was 4.2× as common (n = 300)."], title="Friction points")
    first._ipython_display_()  # no slot open (a report run, JupyterLab): the cards show in place
    assert "42% of 1,204" in shown[-1]["text/html"]
    assert 'class="jl-card">' in shown[-1]["text/html"]  # the report template styles them
    slot = headline_slot()
    assert HEADLINE_PENDING in slot.value
    assert "journeylib-headline-slot" in slot._dom_classes
    first._ipython_display_()
    assert "42% of 1,204" in slot.value
    assert "border-left" in slot.value  # styled inline: a Voila page has no report stylesheet
    assert "42% of 1,204" not in shown[-1]["text/html"]
    assert "Headline findings: at the top of the page." in shown[-1]["text/plain"]
    second._ipython_display_()  # the slot took the first cards only
    assert "4.2×" in shown[-1]["text/html"]
    assert "4.2×" not in slot.value


def test_notes_section_lists_skipped_sections_and_warnings_and_saves_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import warnings

    from journeylib import notebook
    from journeylib.exceptions import EmptyResultError, StatisticalWarning

    notebook.clear_notes()
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    notebook.capture_warnings()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            with notebook.section("Retention"):
                raise EmptyResultError("no cohort has 30+ converted customers")
            warnings.warn("92 of 2,001 customers signed up less than 14 days before as_of", StatisticalWarning, stacklevel=1)
        section = notes_section(tmp_path)
    finally:
        notebook.clear_notes()
    html = section.to_html()
    assert "<h2>Notes on the data</h2>" in html
    assert "<strong>Retention.</strong> No cohort has 30+ converted customers." in html
    assert "<strong>Statistical caveat.</strong> 92 of 2,001 customers signed up less than 14 days before as_of." in html
    saved = json.loads((tmp_path / "artifacts" / "summary.json").read_text())
    assert [n["message"] for n in saved["data_notes"]] == ["92 of 2,001 customers signed up less than 14 days before as_of."]


# -- the demo suite's pages --------------------------------------------------------------------------


class _Text(HTMLParser):
    """Visible text of a page (no style, script or SVG), and the cells of its tables."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if {"style", "script", "svg"} & set(self.stack):
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}\b")
CHECKS: dict[str, re.Pattern[str]] = {
    # a word cut short: letters run straight into the ellipsis ("Onboardi…"); a masked value ("'…'") is not a cut
    "cut-off text": re.compile(r"\w…|\w\.\.\.(?!\w)"),
    "kernel temp path": re.compile(r"/tmp/ipykernel_|ipykernel_\d+|kernel-[\w-]+\.json|\.py:\d+: \w*Warning"),
    "raw dict": re.compile(r"\{['\"][\w .-]+['\"]: "),
    "e-mail address": EMAIL,
    "traceback": re.compile(r"Traceback \(most recent call last\)|\w+(Error|Warning): "),
    "six-decimal float": re.compile(r"\d\.\d{6,}\b"),
    "scientific notation": re.compile(r"\b\d(?:\.\d+)?e[-+]\d+\b"),
}


def scan_report_html(html: str) -> dict[str, list[str]]:
    """Return, per check of :data:`CHECKS`, the offending snippets of a report page's visible text."""
    parser = _Text()
    parser.feed(html)
    text = "\n".join(parser.text)
    found: dict[str, list[str]] = {}
    for name, pattern in CHECKS.items():
        hits = [text[max(m.start() - 40, 0) : m.end() + 20] for m in pattern.finditer(text)]
        if hits:
            found[name] = hits[:5]
    if 'data-mime-type="application/vnd.jupyter.stderr"' in html:
        found.setdefault("traceback", []).append("an error-stream output")
    return found


def test_scan_catches_what_the_old_pages_showed() -> None:
    old = (
        "<table><tr><td>Mid-market customers, Trial Started → Onboardi…</td><td>0.441103</td><td>1.368429e-33</td></tr></table>"
        "<pre>/tmp/ipykernel_123/456.py:3: StatisticalWarning: 1 cohort</pre><pre>{'customers': 2001}</pre>"
        "<p>ops@example.com</p>"
    )
    assert set(scan_report_html(old)) == {
        "cut-off text", "kernel temp path", "raw dict", "e-mail address", "traceback", "six-decimal float", "scientific notation"
    }  # fmt: skip
    assert scan_report_html("<p>42% of 1,204 (95% CI 39%–45%; q < 0.001), event '…' masked.</p>") == {}


@pytest.fixture(scope="module")
def demo_run(demo_suite_run: Path) -> Path:
    """The session's demo-suite run (tests/conftest.py), shared with the browser tests."""
    return demo_suite_run


@pytest.mark.notebooks
@pytest.mark.slow
def test_every_demo_report_reads_as_a_brief(demo_run: Path) -> None:
    manifest = json.loads((demo_run / "manifest.json").read_text(encoding="utf-8"))
    assert {n["name"]: n["status"] for n in manifest["notebooks"]} == {n["name"]: "succeeded" for n in manifest["notebooks"]}
    pages = sorted(demo_run.glob("*/*.html"))
    assert len(pages) == len(manifest["notebooks"]), pages
    problems = {}
    for page in pages:
        html = page.read_text(encoding="utf-8")
        found = scan_report_html(html)
        if found:
            problems[page.name] = found
        assert "Notes on the data" in html, f"{page.name} has no 'Notes on the data' section"
        assert 'href="../glossary.html"' in html, f"{page.name} does not link the glossary"
        assert 'href="../index.html"' in html, f"{page.name} does not link the run index"
        assert '<section class="jl-headline">' in html, f"{page.name} has no headline cards"
        # the headline cards come before the first table of the page
        first_table = html.find('<table class="jl-brief-table">')
        assert first_table == -1 or html.find('<section class="jl-headline">') < first_table, f"{page.name}: cards not first"
        for href in re.findall(r'href="(tables/[^"]+\.csv)"', html):
            assert (page.parent / href).is_file(), f"{page.name} links {href}, which was not written"
    assert problems == {}
    glossary = (demo_run / "glossary.html").read_text(encoding="utf-8")
    for term in ("Confidence interval", "q-value", "Hazard ratio", "Log-rank", "Kaplan–Meier", "Censoring", "AUC", "Brier", "PSI"):
        assert term in glossary
