"""Tables, headline cards and notes that make a report page read as a brief.

A report page is read by people who did not run it. This module turns result
tables into *brief tables* and findings into *headline cards*:

- :func:`brief_table` shows chosen columns with readable headers and values
  formatted for reading (percentages as ``42%``, two or three significant
  digits, p- and q-values as ``< 0.001``, thousands separators, intervals as
  ``1.2–3.4``), no index column, text wrapped and never cut, e-mail addresses
  masked; the full table is written as CSV beside the report, linked as
  "Full table (CSV)".
- :func:`headline_cards` shows the page's findings as full sentences at its top.
- :func:`notes_section` shows the notes of the run (sections not computed,
  remarks, statistical and data warnings) as one "Notes on the data" section in
  plain words.
- :func:`use_brief_tables` makes every DataFrame a notebook displays a brief
  table (all its columns), so no table reaches a report as a raw dump.

The formatters (:func:`format_percent`, :func:`format_number`,
:func:`format_p_value`, :func:`format_interval`) are plain functions of one
value, usable anywhere a number is written for a reader.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylib.notebook import notes, warning_notes
from journeylib.voice.pii import mask_pii

__all__ = [
    "FORMAT_KINDS",
    "HEADLINE_PENDING",
    "NOTES_TITLE",
    "NO_FINDINGS",
    "TABLES_DIR",
    "BriefTable",
    "HeadlineCards",
    "brief_table",
    "column_kind",
    "format_interval",
    "format_number",
    "format_p_value",
    "format_percent",
    "format_value",
    "headline_cards",
    "headline_slot",
    "notes_section",
    "paragraphs",
    "plain_p_values",
    "readable_header",
    "use_brief_tables",
]

#: The value formats :func:`brief_table` knows (``formats={"column": kind}``).
FORMAT_KINDS: tuple[str, ...] = ("percent", "p", "number", "integer", "interval", "date", "text", "bool", "path")
#: What a dashboard's headline slot (:func:`headline_slot`) says until the page's headline cell has run.
HEADLINE_PENDING = "The headline findings of this page appear here once the sections below are computed."
#: Inline styles of the headline cards on a Voila page (the report template's CSS is not loaded there).
_CARDS_STYLE = "display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:10px"
_CARD_STYLE = (
    "border:1px solid #dde1e6;border-left:4px solid #0b5cad;border-radius:6px;padding:10px 12px;"
    "background:#f9fafb;font-size:14px;line-height:1.45"
)
_PENDING_STYLE = "color:#555;font-style:italic;margin:4px 0 10px"
#: The open headline slot of this kernel (a dashboard kernel serves one page), filled by the next headline cards.
_OPEN_SLOT: list[Any] = []
#: Folder, inside the report's folder, that receives the full tables as CSV.
TABLES_DIR = "tables"
#: Title of the notes section.
NOTES_TITLE = "Notes on the data"
#: The card shown when the page's tables leave no finding to state.
NO_FINDINGS = "No headline finding could be stated on this data; the notes at the end of the page say why."

_DASH = "–"  # en dash: ranges, and the mark of a missing value
_P_FLOOR = 0.001
_TINY = 1e-9  # below this a number is floating-point noise around 0
_SMALL = 1e-4  # below this (and above _TINY) a number is written as "< 0.0001"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
# Words that stay as written in headers.
_HEADER_WORDS = {
    "ci": "CI", "id": "ID", "auc": "AUC", "psi": "PSI", "csm": "CSM", "crm": "CRM", "srm": "SRM", "mde": "MDE",
    "p": "p", "q": "q", "n": "n", "hr": "HR", "km": "KM", "ttv": "TTV", "utc": "UTC", "iso": "ISO",
}  # fmt: skip

_state: dict[str, Any] = {"output_dir": "", "counter": 0}


def _missing(x: Any) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(isinstance(x, float | np.floating) and math.isnan(x))
    except TypeError:
        return False


def _mask_emails(text: str) -> str:
    return str(mask_pii(text, emails=True, phones=False, person_names=False))


def _significant(x: float, digits: int) -> str:
    """*x* rounded to *digits* significant digits, without scientific notation, thousands separated."""
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(digits - 1 - magnitude, 0)
    rounded = round(x, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > magnitude:  # 9.99 -> 10.0: one digit fewer
        decimals = max(decimals - 1, 0)
    text = f"{rounded:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_number(x: Any, *, digits: int = 3) -> str:
    """Format a number for a reader: whole numbers in full, others to *digits* significant digits.

    Parameters
    ----------
    x : number
        The value; missing values (None, NaN, NA) become an en dash.
    digits : int, default 3
        Significant digits of a number that is not whole. A number of more
        digits than that before the decimal point keeps them all
        (``12,346``, never ``1.23e+04``).

    Returns
    -------
    str
        Thousands separated, no scientific notation, no trailing zeros.

    Examples
    --------
    >>> format_number(1234567)
    '1,234,567'
    >>> format_number(0.123456)
    '0.123'
    >>> format_number(12345.678)
    '12,346'
    >>> format_number(0.000428)
    '0.0004'
    >>> format_number(float("nan"))
    '–'
    """
    if _missing(x):
        return _DASH
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    value = float(x)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 10 ** (digits - 1):
        return f"{round(value):,}"
    if abs(value) < _TINY:  # floating-point noise around an exact 0 (an interval bound at 0)
        return "0"
    if abs(value) < _SMALL:
        return "< 0.0001" if value > 0 else "> -0.0001"
    if abs(value) < 0.01:  # at most four decimals: 0.000428 reads 0.0004, not six digits after the point
        return f"{value:.4f}".rstrip("0")
    return _significant(value, digits)


def format_percent(x: Any, *, digits: int = 2) -> str:
    """Format a share (0–1) as a percentage with *digits* significant digits, whole percents kept whole.

    Parameters
    ----------
    x : number
        The share; missing values become an en dash.
    digits : int, default 2
        Significant digits below 10% (``4.2%``); from 10% on, whole percents
        (``42%``, ``100%``).

    Returns
    -------
    str
        The percentage with a ``%`` sign.

    Examples
    --------
    >>> format_percent(0.4213)
    '42%'
    >>> format_percent(0.04213)
    '4.2%'
    >>> format_percent(0.0004)
    '0.04%'
    >>> format_percent(1)
    '100%'
    """
    if _missing(x):
        return _DASH
    value = float(x) * 100
    if abs(value) < _TINY * 100:  # floating-point noise around an exact 0
        return "0%"
    if abs(value) < _SMALL * 100:
        return "< 0.01%" if value > 0 else "> -0.01%"
    if abs(value) >= 10:
        return f"{round(value):,}%"
    return f"{_significant(value, digits)}%"


def format_p_value(p: Any) -> str:
    """Format a p- or q-value: ``< 0.001`` below 0.001, else two significant digits.

    Parameters
    ----------
    p : number
        The p- or q-value (0–1); missing values become an en dash.

    Returns
    -------
    str
        ``"< 0.001"``, or the value as ``0.012``, ``0.43``, ``1``.

    Raises
    ------
    ValueError
        If *p* is outside 0–1 (a column that is not a probability).

    Examples
    --------
    >>> format_p_value(3.2e-07)
    '< 0.001'
    >>> format_p_value(0.01234)
    '0.012'
    >>> format_p_value(0.5)
    '0.5'
    """
    if _missing(p):
        return _DASH
    value = float(p)
    if not 0 <= value <= 1:
        msg = f"format_p_value: a p- or q-value lies in 0–1, got {value!r}"
        raise ValueError(msg)
    if value < _P_FLOOR:
        return "< 0.001"
    return _significant(value, 2)


def format_interval(low: Any, high: Any, *, kind: str = "number") -> str:
    """Format an interval as ``low–high`` in the format of its estimate.

    Parameters
    ----------
    low, high : number
        The bounds; when either is missing the interval is an en dash.
    kind : {"number", "percent", "integer"}, default "number"
        How the bounds are written (:func:`format_value`).

    Returns
    -------
    str
        ``"1.2–3.4"``, ``"12%–34%"``.

    Examples
    --------
    >>> format_interval(1.234, 3.456)
    '1.23–3.46'
    >>> format_interval(0.12, 0.347, kind="percent")
    '12%–35%'
    """
    if _missing(low) or _missing(high):
        return _DASH
    return f"{format_value(low, kind)}{_DASH}{format_value(high, kind)}"


_P_IN_TEXT = re.compile(r"\b([pq])\s*(=)\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w.])")
_P_EQUALS_BOUND = re.compile(r"\b([pq])\s*=\s*([<>])\s*")  # "q=<0.001" (a formatted bound after "="): "q < 0.001"
_SCI = re.compile(r"(?<![\w.])(\d(?:\.\d+)?[eE][-+]?\d+)(?![\w.])")
_LONG_DECIMAL = re.compile(r"(?<![\w.])(\d+\.\d{5,})(?![\w.])")


def plain_p_values(text: str) -> str:
    """Rewrite p-values and long numbers in a sentence as a reader writes them.

    ``q = 1.97e-18``, ``p=3e-07`` and ``q = 0.000235`` become ``q < 0.001``
    and ``p < 0.001``; other p- and q-values get two significant digits
    (:func:`format_p_value`); any other number in scientific notation or
    with five or more decimals is written out (:func:`format_number`).

    Parameters
    ----------
    text : str
        The sentence.

    Returns
    -------
    str
        The sentence with no scientific notation.

    Examples
    --------
    >>> plain_p_values("a difference (q = 1.97e-18).")
    'a difference (q < 0.001).'
    >>> plain_p_values("ratio 4.0 (q=<0.001).")
    'ratio 4.0 (q < 0.001).'
    """
    def p_text(m: re.Match[str]) -> str:
        value = float(m.group(3))
        if not 0 <= value <= 1:
            return m.group(0)
        return f"{m.group(1)} < 0.001" if value < _P_FLOOR else f"{m.group(1)} = {format_p_value(value)}"

    text = _P_IN_TEXT.sub(p_text, str(text))
    text = _P_EQUALS_BOUND.sub(lambda m: f"{m.group(1)} {m.group(2)} ", text)
    text = _SCI.sub(lambda m: format_number(float(m.group(1))), text)
    return _LONG_DECIMAL.sub(lambda m: format_number(float(m.group(1))), text)


def _format_text(x: Any) -> str:
    if isinstance(x, list | tuple | np.ndarray | set):
        return ", ".join(_format_text(v) for v in x)
    if isinstance(x, Mapping):
        return "; ".join(f"{readable_header(str(k))}: {_format_text(v)}" for k, v in x.items())
    if isinstance(x, float | np.floating | int | np.integer) and not isinstance(x, bool | np.bool_):
        return format_number(x)
    return plain_p_values(_mask_emails(str(x)))


def format_value(x: Any, kind: str) -> str:
    """Format one value as *kind* (one of :data:`FORMAT_KINDS`).

    Parameters
    ----------
    x : object
        The value; missing values become an en dash.
    kind : str
        ``percent``, ``p``, ``number``, ``integer``, ``date``, ``bool``,
        ``path`` (a file by its folder and name: the machine's full path
        stays in the CSV) or ``text`` (lists joined with commas, mappings as
        ``key: value``, e-mail addresses masked). ``interval`` takes a
        ``(low, high)`` pair.

    Returns
    -------
    str
        The text a reader sees.

    Raises
    ------
    ValueError
        If *kind* is not one of :data:`FORMAT_KINDS`.

    Examples
    --------
    >>> format_value(0.25, "percent")
    '25%'
    >>> format_value(["a", "b"], "text")
    'a, b'
    """
    if kind not in FORMAT_KINDS:
        msg = f"format_value: unknown format {kind!r}; allowed: {', '.join(FORMAT_KINDS)}"
        raise ValueError(msg)
    if kind == "interval":
        low, high = x
        return format_interval(low, high)
    if not isinstance(x, list | tuple | np.ndarray | set | Mapping) and _missing(x):
        return _DASH
    if kind == "percent":
        return format_percent(x)
    if kind == "p":
        return format_p_value(x)
    if kind == "number":
        return format_number(x)
    if kind == "integer":
        return f"{round(float(x)):,}"
    if kind == "bool":
        return "yes" if bool(x) else "no"
    if kind == "path":
        parts = Path(str(x)).parts
        return "/".join(parts[-2:]) if len(parts) > 1 else str(x)
    if kind == "date":
        stamp = pd.Timestamp(x)
        has_time = (stamp.hour, stamp.minute, stamp.second) != (0, 0, 0)
        return stamp.strftime("%Y-%m-%d %H:%M" if has_time else "%Y-%m-%d")
    return _format_text(x)


def readable_header(name: str) -> str:
    """Turn a column name into a header: ``conversion_rate`` → ``Conversion rate``, ``p_value`` → ``p-value``.

    Parameters
    ----------
    name : str
        The column name.

    Returns
    -------
    str
        Words separated by spaces, the first capitalised, abbreviations kept
        (CI, AUC, PSI, ID, ...).

    Examples
    --------
    >>> readable_header("customer_id")
    'Customer ID'
    >>> readable_header("q_value")
    'q-value'
    """
    words = [w for w in str(name).replace("-", "_").split("_") if w]
    if not words:
        return str(name)
    if len(words) >= 2 and words[-1] == "value" and words[-2] in ("p", "q"):
        words = [*words[:-2], f"{words[-2]}-value"]
    out = [_HEADER_WORDS.get(w.lower(), w) for w in words]
    first = out[0]
    if first == first.lower() and first not in ("p", "q", "n") and not first.startswith(("p-", "q-")):
        out[0] = first[:1].upper() + first[1:]
    return " ".join(out)


_P_NAMES = re.compile(r"(^|_)(p|q)(_value|value)?(_adj(usted)?)?$|^(p|q)_|_p_value$|_q_value$")
_PERCENT_NAMES = re.compile(r"(rate|share|pct|percent|precision|recall|coverage)(_|$)|(^|_)(rate|share)_")


def column_kind(name: str, values: pd.Series) -> str:
    """Guess how a column is read, from its name and values (one of :data:`FORMAT_KINDS`).

    p- and q-values are columns named ``p``, ``q``, ``p_value``, ``q_value`` or
    ending so, with values in 0–1; percentages are columns whose name says
    rate, share, precision, recall or coverage, with values in 0–1; text
    columns named ``file``, ``path`` or ending ``_file``/``_path`` are
    paths; the others follow the dtype (integers, numbers, dates, booleans,
    text).

    Parameters
    ----------
    name : str
        The column name.
    values : pandas.Series
        Its values.

    Returns
    -------
    str
        The kind.

    Examples
    --------
    >>> column_kind("conversion_rate", pd.Series([0.1, 0.5]))
    'percent'
    >>> column_kind("p_value", pd.Series([1e-9]))
    'p'
    >>> column_kind("tickets", pd.Series([3, 4]))
    'integer'
    """
    lowered = str(name).lower()
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    if pd.api.types.is_numeric_dtype(values):
        finite = pd.to_numeric(values, errors="coerce").dropna()
        finite = finite[np.isfinite(finite)]
        unit = bool(len(finite)) and bool(((finite >= 0) & (finite <= 1)).all())
        if _P_NAMES.search(lowered) and (unit or not len(finite)):
            return "p"
        if _PERCENT_NAMES.search(lowered) and (unit or not len(finite)):
            return "percent"
        if pd.api.types.is_integer_dtype(values):
            return "integer"
        return "number"
    if re.search(r"(^|_)(file|path)$", lowered):
        return "path"
    return "text"


def _interval_pairs(columns: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Map each estimate to its (low, high) columns; the key ``""`` to a bare ``ci_low``/``ci_high``.

    An estimate ``x`` pairs with ``x_ci_low``/``x_ci_high``, ``x_low``/``x_high`` or ``x_lower``/``x_upper``.
    """
    present = set(columns)
    pairs: dict[str, tuple[str, str]] = {}
    for col in columns:
        for low_suffix, high_suffix in (("_ci_low", "_ci_high"), ("_low", "_high"), ("_lower", "_upper")):
            stem = col[: -len(low_suffix)]
            if col.endswith(low_suffix) and stem and stem + high_suffix in present:
                pairs.setdefault(stem, (col, stem + high_suffix))
        for low, high in (("ci_low", "ci_high"), ("lower", "upper")):
            if col == low and high in present:
                pairs.setdefault("", (low, high))
    return pairs


def _csv_name(name: str | None) -> str:
    if name:
        stem = _SAFE_NAME.sub("_", name).strip("_") or "table"
    else:
        _state["counter"] += 1
        stem = f"table_{_state['counter']:02d}"
    return f"{stem}.csv"


@dataclass(frozen=True)
class BriefTable:
    """A table formatted for reading, with a link to its full CSV; displays as HTML.

    Attributes
    ----------
    frame : pandas.DataFrame
        The formatted cells (text), with readable headers, in display order.
    kinds : dict
        Header -> format kind (right-aligned numbers, left-aligned text).
    csv_href : str
        Link to the full table (relative to the report page); empty when no
        CSV was written.
    caption : str
        Text above the table (rows shown of how many).
    """

    frame: pd.DataFrame
    kinds: dict[str, str] = field(default_factory=dict)
    csv_href: str = ""
    caption: str = ""

    def to_html(self) -> str:
        """Return the table as an HTML fragment (``<div class="jl-brief">``)."""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.frame.columns)
        rows = []
        for values in self.frame.itertuples(index=False, name=None):
            cells = []
            for col, value in zip(self.frame.columns, values, strict=True):
                numeric = self.kinds.get(str(col)) in ("percent", "p", "number", "integer", "interval")
                cls = ' class="num"' if numeric else ""
                cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        link = f' <a class="jl-csv" href="{html.escape(self.csv_href)}">Full table (CSV)</a>' if self.csv_href else ""
        caption = f'<p class="jl-brief-caption">{html.escape(self.caption)}{link}</p>' if (self.caption or link) else ""
        return (
            f'<div class="jl-brief">{caption}<table class="jl-brief-table"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def brief_table(
    df: pd.DataFrame,
    *,
    columns: Sequence[str] | Mapping[str, str] | None = None,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    name: str | None = None,
    max_rows: int | None = 50,
    output_dir: str | os.PathLike[str] | None = None,
) -> BriefTable:
    """Show chosen columns of a table formatted for reading, with the full table saved as CSV.

    Interval columns are merged into one column next to their estimate:
    ``x_ci_low``/``x_ci_high`` beside ``x`` (header "x 95% CI"), and a bare
    ``ci_low``/``ci_high`` (header "95% CI") after the last estimate shown.
    Every cell is text; nothing is cut (the page wraps long text).

    Parameters
    ----------
    df : pandas.DataFrame
        The result table; not modified. A named index becomes leading
        columns; an unnamed index (row numbers) is not shown.
    columns : sequence of str or mapping of str to str, optional
        The columns shown, in order; a mapping also gives their headers.
        Default: every column, headers from :func:`readable_header`. Interval
        bounds need not be listed: the interval of a listed estimate follows it.
    formats : mapping, optional
        Column -> a kind of :data:`FORMAT_KINDS` or a function of one value
        returning text. Default: :func:`column_kind`.
    name : str, optional
        File name of the CSV (``<name>.csv``); default ``table_NN``.
    max_rows : int or None, default 50
        Rows shown; the CSV has every row. None shows every row.
    output_dir : str or os.PathLike, optional
        The report's folder; the full table (every column and row, e-mail
        addresses masked) goes to ``<output_dir>/tables/<name>.csv`` and the
        table links to it. Default: the folder given to
        :func:`use_brief_tables`; empty writes nothing and shows no link.

    Returns
    -------
    BriefTable
        Displays as HTML; ``frame`` holds the formatted cells.

    Raises
    ------
    KeyError
        If a column in *columns* or *formats* is not in the table.
    ValueError
        If a format is not one of :data:`FORMAT_KINDS`.

    Examples
    --------
    >>> t = brief_table(pd.DataFrame({"stage": ["Trial"], "conversion_rate": [0.4213],
    ...                               "ci_low": [0.38], "ci_high": [0.46], "p_value": [2e-9]}))
    >>> t.frame.to_dict("records")
    [{'Stage': 'Trial', 'Conversion rate': '42%', '95% CI': '38%–46%', 'p-value': '< 0.001'}]
    """
    if not isinstance(df, pd.DataFrame):
        msg = f"brief_table: df must be a pandas DataFrame, got {type(df).__name__}"
        raise TypeError(msg)
    # A named index is data (a group key) and becomes columns; an unnamed one is row numbers and is dropped.
    named = any(n is not None for n in df.index.names)
    frame = df.reset_index(drop=not named)
    frame.columns = [str(c) for c in frame.columns]
    headers: dict[str, str] = dict(columns) if isinstance(columns, Mapping) else {}
    chosen = list(columns) if columns is not None else list(frame.columns)
    formats = dict(formats or {})
    unknown = [c for c in [*chosen, *formats] if c not in frame.columns]
    if unknown:
        msg = f"brief_table: columns {unknown} are not in the table; it has {list(frame.columns)}"
        raise KeyError(msg)
    bad = [f"{c}={k!r}" for c, k in formats.items() if isinstance(k, str) and k not in FORMAT_KINDS]
    if bad:
        msg = f"brief_table: unknown formats {', '.join(bad)}; allowed: {', '.join(FORMAT_KINDS)}"
        raise ValueError(msg)

    pairs = _interval_pairs(list(frame.columns))
    bounds = {b for pair in pairs.values() for b in pair}
    shown_rows = frame if max_rows is None else frame.head(int(max_rows))
    kinds: dict[str, str] = {}
    cells: dict[str, list[str]] = {}

    def add(header: str, kind: str, texts: list[str]) -> None:
        while header in cells:
            header += " "
        kinds[header] = kind
        cells[header] = texts

    visible = [c for c in chosen if c not in bounds]
    bare = pairs.get("")
    # A bare ci_low/ci_high follows the last shown column that stands before it in the table.
    order = list(frame.columns)
    before = [c for c in visible if bare and order.index(c) < order.index(bare[0])]
    bare_after = before[-1] if before else (visible[-1] if visible else None)
    for col in visible:
        fmt = formats.get(col) or column_kind(col, frame[col])
        values = shown_rows[col]
        texts = [fmt(v) for v in values] if callable(fmt) else [format_value(v, fmt) for v in values]
        kind = fmt if isinstance(fmt, str) else "text"
        header = headers.get(col) or readable_header(col)
        add(header, kind, texts)
        if col in pairs:
            low, high = pairs[col]
            add(f"{header} 95% CI", "interval", _interval_texts(shown_rows, low, high, kind))
        if bare and col == bare_after:
            add("95% CI", "interval", _interval_texts(shown_rows, *bare, kind))
    table = pd.DataFrame(cells, columns=list(cells))

    target = _state["output_dir"] if output_dir is None else str(output_dir)
    href = ""
    if target:
        folder = Path(target) / TABLES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        file_name = _csv_name(name)
        full = frame.copy()
        text_cols = [c for c in full.columns if full[c].dtype == object]
        for col in text_cols:
            full[col] = full[col].map(lambda v: v if _missing(v) or not isinstance(v, str) else _mask_emails(v))
        full.to_csv(folder / file_name, index=False)
        href = f"{TABLES_DIR}/{file_name}"
    caption = ""
    if max_rows is not None and len(frame) > len(shown_rows):
        caption = f"The first {len(shown_rows):,} of {len(frame):,} rows."
    return BriefTable(frame=table, kinds=kinds, csv_href=href, caption=caption)


def _interval_texts(frame: pd.DataFrame, low: str, high: str, kind: str) -> list[str]:
    interval_kind = "percent" if kind == "percent" else "number"
    return [format_interval(lo, hi, kind=interval_kind) for lo, hi in zip(frame[low], frame[high], strict=True)]


@dataclass(frozen=True)
class HeadlineCards:
    """The findings of a page as cards; displays as HTML at the top of the report.

    Attributes
    ----------
    findings : tuple of str
        The sentences, in order.
    title : str
        The heading above the cards.
    """

    findings: tuple[str, ...]
    title: str = "Headline findings"

    def to_html(self, *, inline: bool = False) -> str:
        """Return the cards as an HTML fragment (``<section class="jl-headline">``).

        With *inline*, the cards carry their styles (a Voila page does not load
        the report template's stylesheet).
        """
        card_style = f' style="{_CARD_STYLE}"' if inline else ""
        cards_style = f' style="{_CARDS_STYLE}"' if inline else ""
        cards = "".join(f'<div class="jl-card"{card_style}>{html.escape(f)}</div>' for f in self.findings)
        return (
            f'<section class="jl-headline"><h2>{html.escape(self.title)}</h2>'
            f'<div class="jl-cards"{cards_style}>{cards}</div></section>'
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def _ipython_display_(self) -> None:
        # On a dashboard whose top holds a headline slot (headline_slot), the first cards fill it and the
        # cell shows one line pointing up; everywhere else (reports, JupyterLab) the cards show in place.
        from IPython.display import display

        if _OPEN_SLOT:
            slot = _OPEN_SLOT.pop()
            slot.value = self.to_html(inline=True)
            note = f"{self.title}: at the top of the page."
            display({"text/html": f'<p style="{_PENDING_STYLE}">{html.escape(note)}</p>', "text/plain": note}, raw=True)
            return
        display({"text/html": self.to_html(), "text/markdown": self._repr_markdown_(), "text/plain": repr(self)}, raw=True)

    def _repr_markdown_(self) -> str:
        return f"**{self.title}**\n\n" + "\n".join(f"- {f}" for f in self.findings)

    def __repr__(self) -> str:
        return "\n".join(self.findings)


def headline_cards(findings: Sequence[str], *, title: str = "Headline findings", max_cards: int = 5) -> HeadlineCards:
    """Show the page's findings as full sentences, one card each, for the top of a report.

    Each finding should carry its number, interval and denominator ("42% of
    the 1,204 trials converted (95% CI 39%–45%)."); the sentences are shown as
    given, with e-mail addresses masked and p-values and long numbers written
    for readers (:func:`plain_p_values`).

    Parameters
    ----------
    findings : sequence of str
        The findings, most important first; empty strings are dropped. When
        none is left, one card says so (:data:`NO_FINDINGS`).
    title : str, default "Headline findings"
        The heading.
    max_cards : int, default 5
        At most this many are shown.

    Returns
    -------
    HeadlineCards
        Displays as HTML (and as a Markdown list in text front ends).

    Raises
    ------
    ValueError
        If a finding is not a full sentence (it must end with ".", "!" or "?").

    Examples
    --------
    >>> headline_cards(["42% of 1,204 trials converted (95% CI 39%–45%)."]).findings
    ('42% of 1,204 trials converted (95% CI 39%–45%).',)
    """
    kept = [plain_p_values(_mask_emails(str(f).strip())) for f in findings if str(f).strip()]
    if not kept:  # the data left nothing to state: say so on the page rather than fail the report
        kept = [NO_FINDINGS]
    cut = [f for f in kept if not f.endswith((".", "!", "?", ".)"))]
    if cut:
        msg = f"headline_cards: findings must be full sentences ending with '.', got {cut[:3]}"
        raise ValueError(msg)
    return HeadlineCards(findings=tuple(kept[: int(max_cards)]), title=title)


def headline_slot(*, pending: str = HEADLINE_PENDING) -> Any:
    """Return the place at the top of a dashboard page where the page's headline cards will show.

    A dashboard page shows its controls first and computes its report
    sections below them; the headline cards are computed last, from those
    sections. Displayed at the top of the page (in the ``dashboard-only``
    cell), the slot says *pending* until the next :class:`HeadlineCards`
    displayed in this kernel fills it with the cards (which then leave one
    line in their own cell). One slot is open at a time: a new slot replaces
    an open one, and later cards show in place as usual. Report runs and
    notebooks without a slot are unchanged.

    Parameters
    ----------
    pending : str, default :data:`HEADLINE_PENDING`
        What the slot says until it is filled.

    Returns
    -------
    ipywidgets.HTML
        The slot (class ``journeylib-headline-slot``).

    Examples
    --------
    >>> slot = headline_slot()
    >>> headline_cards(["42% of 1,204 trials converted (95% CI 39%–45%)."])._ipython_display_()  # doctest: +SKIP
    >>> "42% of 1,204" in slot.value  # doctest: +SKIP
    True
    """
    import ipywidgets as widgets

    slot = widgets.HTML(value=f'<p style="{_PENDING_STYLE}">{html.escape(pending)}</p>')
    slot.add_class("journeylib-headline-slot")
    _OPEN_SLOT[:] = [slot]
    return slot


@dataclass(frozen=True)
class NotesSection:
    """The "Notes on the data" section; displays as HTML.

    Attributes
    ----------
    items : tuple of (str, str)
        (topic, text) per note.
    """

    items: tuple[tuple[str, str], ...]

    def to_html(self) -> str:
        """Return the section as an HTML fragment (``<section class="jl-notes">``)."""
        if not self.items:
            body = "<p>Every section was computed, and no statistical or data caveat was raised.</p>"
        else:
            body = "<ul>" + "".join(
                f"<li><strong>{html.escape(t)}.</strong> {html.escape(x)}</li>" for t, x in self.items
            ) + "</ul>"
        return f'<section class="jl-notes" id="notes-on-the-data"><h2>{NOTES_TITLE}</h2>{body}</section>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return "\n".join(f"{t}. {x}" for t, x in self.items) or "No notes."


def notes_section(output_dir: str | os.PathLike[str] = "") -> NotesSection:
    """Gather the run's notes into one "Notes on the data" section, and save the warnings in ``summary.json``.

    The section lists the sections not computed and the remarks
    (:func:`journeylib.notebook.notes`), then the warnings raised while the
    notebook ran (:func:`journeylib.notebook.warning_notes`: statistical and
    data caveats, each once, with how many times it was raised), in plain
    words: no traceback, no file path. With *output_dir* set, the warnings are
    added to the notebook's ``summary.json`` as ``data_notes``.

    Parameters
    ----------
    output_dir : str or os.PathLike, default ""
        The report folder (the notebook's ``output_dir``); empty saves nothing.

    Returns
    -------
    NotesSection
        Displays as HTML.
    """
    from journeylib.reports.artifacts import write_artifacts

    items = [(n["section"], n["message"]) for n in notes()]
    caveats = warning_notes()
    for w in caveats:
        times = f" (raised {w['count']} times)" if int(w["count"]) > 1 else ""
        items.append((w["section"], f"{w['message']}{times}"))
    if output_dir:
        write_artifacts(output_dir, tables={}, summary={"data_notes": caveats})
    return NotesSection(items=tuple(items))


@dataclass(frozen=True)
class Paragraphs:
    """Sentences shown as Markdown paragraphs; displays in notebooks and reports.

    Attributes
    ----------
    lines : tuple of str
        The paragraphs, numbers written for readers and e-mail addresses masked.
    """

    lines: tuple[str, ...]

    def _repr_markdown_(self) -> str:
        return "\n\n".join(self.lines)

    def __repr__(self) -> str:
        return "\n\n".join(self.lines)


def paragraphs(lines: Sequence[str] | pd.Series, *, empty: str = "") -> Paragraphs:
    """Show sentences as paragraphs, with p-values and long numbers written for readers.

    Parameters
    ----------
    lines : sequence of str or pandas.Series
        The sentences (for example a result table's ``text`` column or a list
        of notes); blank ones are dropped.
    empty : str, default ""
        What to show when there is no sentence.

    Returns
    -------
    Paragraphs
        Displays as Markdown; each line passes through :func:`plain_p_values`
        and has its e-mail addresses masked.

    Examples
    --------
    >>> paragraphs(["Stalls begin in Trial (q = 9.97e-11)."]).lines
    ('Stalls begin in Trial (q < 0.001).',)
    >>> paragraphs([], empty="No caveats.").lines
    ('No caveats.',)
    """
    kept = tuple(plain_p_values(_mask_emails(str(x))) for x in list(lines) if str(x).strip())
    return Paragraphs(lines=kept or ((empty,) if empty else ()))


def _display_frame_html(df: pd.DataFrame) -> str:
    return brief_table(df).to_html()


def _display_series_html(values: pd.Series) -> str:
    return brief_table(values.to_frame(name=values.name if values.name is not None else "value")).to_html()


def _display_mapping_html(mapping: dict[Any, Any]) -> str:
    """Return a dict as a two-column table (item, value) instead of its repr."""
    rows = pd.DataFrame({"item": [readable_header(str(k)) for k in mapping], "value": [_format_text(v) for v in mapping.values()]})
    return brief_table(rows, formats={"value": "text"}, max_rows=None, output_dir="").to_html()


def use_brief_tables(output_dir: str | os.PathLike[str] = "") -> None:
    """Make every DataFrame the notebook displays a brief table, and save full tables beside the report.

    Registers :func:`brief_table` (every column, 50 rows) as the HTML
    formatter of pandas DataFrames and Series in the running IPython kernel,
    and shows a dict a cell returns as a two-column table (item, value)
    instead of its repr; outside IPython it only remembers *output_dir*.
    Call it once in the notebook's set-up cell.

    Parameters
    ----------
    output_dir : str or os.PathLike, default ""
        The report folder; full tables go to ``<output_dir>/tables/`` as CSV.
        Empty (JupyterLab, Voila) writes nothing.
    """
    _state["output_dir"] = str(output_dir or "")
    _state["counter"] = 0
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
        return
    shell = get_ipython()
    if shell is None:
        return
    html_formatter = shell.display_formatter.formatters["text/html"]
    html_formatter.for_type(pd.DataFrame, _display_frame_html)
    html_formatter.for_type(pd.Series, _display_series_html)
    html_formatter.for_type(dict, _display_mapping_html)
