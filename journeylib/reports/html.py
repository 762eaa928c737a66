"""The offline HTML of a report: one page per executed notebook, and the Jinja templates of the index pages.

:func:`write_report_html` converts an executed notebook with the nbconvert
template ``journeylib_report`` (code hidden, SVG charts inlined with distinct
ids, nothing loaded from the network); :func:`report_header` builds the run
header it shows; :func:`jinja_environment` renders the run and runs indexes
(:mod:`journeylib.reports.index`).
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

__all__ = ["HTML_REMOVE_TAGS", "TEMPLATES_DIR", "jinja_environment", "report_header", "write_report_html"]

#: Cells with these tags are left out of the HTML report (live widgets, helper cells).
HTML_REMOVE_TAGS = ("dashboard-only", "remove-cell", "parameters", "injected-parameters")
#: Folder of journeylib's templates: the nbconvert report template and the index pages.
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
_NBCONVERT_TEMPLATES = TEMPLATES_DIR / "nbconvert"
_NBCONVERT_TEMPLATE = "journeylib_report"

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
    output. The page loads nothing from the network: the nbconvert template
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
        (dict of label -> text) and ``parameters`` (dict).

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
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and not c.get("outputs"))]

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
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, out)
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
        ``title``, ``status``, ``facts`` (label -> text) and ``parameters``
        (name -> JSON text), as :func:`write_report_html` takes for *header*.
    """
    facts = {
        "Suite": manifest["suite"],
        "Run": manifest["run_id"],
        "Notebook": f"{record['notebook']}.ipynb"
        + (f" (parameter set {record['parameter_set']})" if record["parameter_set"] else ""),
        "Data": f"{record['db']} (fingerprint {record['fingerprint']})",
        "Executed": f"{record['started_at']} UTC, {record['timings'].get('execute', 0):.1f} s",
        "journeylib": str(manifest["versions"].get("journeylib")),
    }
    if record.get("error"):
        facts["Error"] = record["error"]["message"]
    return {
        "title": f"{record['name']} — {manifest['suite']} {manifest['run_id']}",
        "status": record["status"],
        "facts": facts,
        "parameters": {k: json.dumps(v, ensure_ascii=False) for k, v in record["parameters"].items()},
    }


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
