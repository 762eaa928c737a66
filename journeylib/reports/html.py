"""The offline HTML of a report: one page per executed notebook, and the Jinja templates of the index pages.

:func:`write_report_html` converts an executed notebook with the nbconvert
template ``journeylib_report`` (code hidden, SVG charts inlined with distinct
ids, nothing loaded from the network, text wrapped, output on the error
stream left to the executed notebook); :func:`report_header` builds the run
header it shows, with the navigation between the reports of the run and a link
to the glossary page :func:`write_glossary` writes; :func:`jinja_environment`
renders the run and runs indexes (:mod:`journeylib.reports.index`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from journeylib.reports.artifacts import atomic_write

__all__ = [
    "GLOSSARY_FILE",
    "HEADLINE_TAG",
    "HTML_REMOVE_TAGS",
    "TEMPLATES_DIR",
    "jinja_environment",
    "report_header",
    "write_glossary",
    "write_report_html",
]

#: Cells with these tags are left out of the HTML report (live widgets, helper cells).
HTML_REMOVE_TAGS = ("dashboard-only", "remove-cell", "parameters", "injected-parameters")
#: Cells with this tag (the headline cards, computed once the page's tables exist) open the HTML report,
#: right after the title cell.
HEADLINE_TAG = "headline"
#: Folder of journeylib's templates: the nbconvert report template and the index pages.
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
_NBCONVERT_TEMPLATES = TEMPLATES_DIR / "nbconvert"
_NBCONVERT_TEMPLATE = "journeylib_report"
#: File name of the glossary page written beside the notebooks of a run (in the run folder).
GLOSSARY_FILE = "glossary.html"
# Runner parameters that are file paths on the machine that ran the report: in the manifest, not on the page.
_PATH_PARAMETERS = ("db", "engine", "output_dir")

_XML_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def _inline_svg_filter() -> Any:
    """Return a Jinja filter inlining an SVG output, ids prefixed so charts do not share clip paths."""
    counter = itertools.count(1)

    def inline_svg(svg: Any) -> str:
        text = _SCRIPT.sub("", _XML_PROLOG.sub("", str(svg)))
        ids = set(_SVG_ID.findall(text))
        if not ids:
            return text
        prefix = f"jl{next(counter)}-"
        names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        refs = re.compile(rf"""(\bid="|url\(#|url\(['"]#|href="#)({names})(?=["')])""")
        return refs.sub(lambda m: m.group(1) + prefix + m.group(2), text)

    return inline_svg


def write_report_html(
    notebook: str | os.PathLike[str],
    html_path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    header: Mapping[str, Any] | None = None,
) -> Path:
    """Convert an executed notebook into a self-contained offline HTML report.

    Code is hidden, as are cells tagged ``dashboard-only``, ``remove-cell``,
    ``parameters`` and ``injected-parameters``, and code cells without
    output. Cells tagged ``headline`` (the headline cards) are moved to the
    top, right after the title cell. Output a cell wrote to the error stream (library log lines,
    warnings not captured by :func:`journeylib.notebook.capture_warnings`) is
    left out of the page and stays in the executed notebook; the page says
    how many such outputs there were. The page loads nothing from the network: the nbconvert template
    ``journeylib_report`` (in ``journeylib/templates/nbconvert``) drops the
    lab template's CDN scripts (require.js, MathJax, Mermaid, widget
    manager), so charts must be rendered in the kernel as SVG
    (``journeylib.notebook.setup_altair("static")``, what the runner sets).

    Parameters
    ----------
    notebook : str or os.PathLike
        The executed ``.ipynb``.
    html_path : str or os.PathLike, optional
        Where to write; default: next to *notebook* with ``.html``.
    title : str, optional
        The page title; default: the notebook's file stem.
    header : mapping, optional
        A run header shown at the top: ``title``, ``status``, ``facts``
        (dict of label -> text), ``parameters`` (dict) and ``nav`` (list of
        dicts ``label``, ``href``, ``current``: the links between the reports
        of the run, the run index and the glossary).

    Returns
    -------
    pathlib.Path
        The HTML file.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    src = Path(notebook)
    out = Path(html_path) if html_path is not None else src.with_suffix(".html")
    nb = nbformat.read(str(src), as_version=4)
    stderr_outputs = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            kept = [o for o in cell.get("outputs", []) if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            stderr_outputs += len(cell.get("outputs", [])) - len(kept)
            cell.outputs = kept
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and not c.get("outputs"))]
    headline = [c for c in nb.cells if HEADLINE_TAG in c.get("metadata", {}).get("tags", [])]
    if headline:
        rest = [c for c in nb.cells if HEADLINE_TAG not in c.get("metadata", {}).get("tags", [])]
        first = 1 if rest and rest[0].cell_type == "markdown" else 0
        nb.cells = [*rest[:first], *headline, *rest[first:]]
    if stderr_outputs:
        nb.cells.append(
            nbformat.v4.new_markdown_cell(
                f"{stderr_outputs} message(s) the notebook wrote to its error stream are not shown here; "
                f"they are in the executed notebook `{src.name}`."
            )
        )

    c = Config()
    c.TemplateExporter.extra_template_basedirs = [str(_NBCONVERT_TEMPLATES)]
    c.TemplateExporter.exclude_input = True
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(HTML_REMOVE_TAGS)
    exporter = HTMLExporter(config=c, template_name=_NBCONVERT_TEMPLATE)
    exporter.register_filter("jl_inline_svg", _inline_svg_filter())
    resources: dict[str, Any] = {"metadata": {"name": title or src.stem}}
    if header:
        resources["journeylib"] = dict(header)
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    atomic_write(out, body)
    if header and header.get("nav"):  # a page of a run: its glossary link leads to the run folder
        write_glossary(out.parent.parent)
    return out


def report_header(manifest: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run header shown at the top of one notebook's HTML report.

    Parameters
    ----------
    manifest : mapping
        The run's manifest (``suite``, ``run_id``, ``versions``).
    record : mapping
        The notebook's entry in ``manifest["notebooks"]``, after execution.

    Returns
    -------
    dict
        ``title``, ``status``, ``facts`` (label -> text; the store by its
        file name), ``parameters`` (name -> JSON text; not ``db`` and
        ``output_dir``, machine paths kept in the manifest) and ``nav`` (the
        run index, every notebook of the run, the glossary), as
        :func:`write_report_html` takes for *header*.
    """
    facts = {
        "Suite": manifest["suite"],
        "Run": manifest["run_id"],
        "Notebook": f"{record['notebook']}.ipynb"
        + (f" (parameter set {record['parameter_set']})" if record["parameter_set"] else ""),
        "Data": f"{Path(str(record.get('engine') or record['db'])).name} (fingerprint {record['fingerprint']}; full path in manifest.json)",
        "Executed": f"{record['started_at']} UTC, {record['timings'].get('execute', 0):.1f} s",
        "journeylib": str(manifest["versions"].get("journeylib")),
    }
    if record.get("error"):
        facts["Error"] = record["error"]["message"]
    nav = [{"label": "Run index", "href": "../index.html", "current": False}]
    nav += [
        {"label": str(other["name"]), "href": f"../{other['name']}/{other['name']}.html", "current": other["name"] == record["name"]}
        for other in manifest.get("notebooks", [])
    ]
    nav.append({"label": "Glossary", "href": f"../{GLOSSARY_FILE}", "current": False})
    return {
        "title": f"{record['name']} — {manifest['suite']} {manifest['run_id']}",
        "status": record["status"],
        "facts": facts,
        "parameters": {
            k: json.dumps(v, ensure_ascii=False) for k, v in record["parameters"].items() if k not in _PATH_PARAMETERS
        },
        "nav": nav,
    }


def write_glossary(folder: str | os.PathLike[str]) -> Path:
    """Write the glossary of the statistical terms the reports use, as ``<folder>/glossary.html``.

    Offline, one page: what a confidence interval, a p- and q-value
    (Benjamini–Hochberg), a hazard ratio, the log-rank test, Kaplan–Meier,
    censoring, AUC, the Brier score, lift, PSI and the other terms of the
    reports mean, in plain words, each with an anchor (``#ci``, ``#q-value``,
    ...) reports can link to.

    Parameters
    ----------
    folder : str or os.PathLike
        The run folder (the notebooks' pages link to ``../glossary.html``).

    Returns
    -------
    pathlib.Path
        The page.
    """
    out = Path(folder) / GLOSSARY_FILE
    page = jinja_environment().get_template("glossary.html.j2").render()
    return atomic_write(out, page)


def jinja_environment() -> jinja2.Environment:
    """Return the Jinja environment of the report pages in ``journeylib/templates``.

    Returns
    -------
    jinja2.Environment
        HTML autoescaping, trimmed blocks, and a ``tojson_compact`` filter.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["tojson_compact"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env
