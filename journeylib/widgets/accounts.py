"""AccountList: "list these customers" beside a count, with the list as a table and a CSV download.

The sub-widget the journey-map and drivers dashboards put beside their
counts. It does not compute anything itself: its owner gives it a callable
that returns the account list (a ``*_accounts_data`` result of
:mod:`journeylib.customers.accounts`) for the owner's current choices. The
download is a ``data:`` link (no server round trip, works offline and under
the dashboard's Content-Security-Policy, which allows ``data:``).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable

import ipywidgets as widgets
import pandas as pd

from journeylib.customers.accounts import accounts_csv
from journeylib.widgets.base import error_html

__all__ = ["AccountList", "csv_data_url", "csv_link_html"]

#: Rows of a list shown on the page (the CSV has every row).
SHOWN_ROWS = 25


def csv_data_url(frame: pd.DataFrame) -> str:
    """Return *frame* as CSV in a ``data:text/csv;base64,...`` URL.

    Parameters
    ----------
    frame : pandas.DataFrame
        An account list (or any table).

    Returns
    -------
    str
        The URL; a link with a ``download`` attribute saves it as a file.
    """
    payload = base64.b64encode(accounts_csv(frame).encode("utf-8")).decode("ascii")
    return f"data:text/csv;charset=utf-8;base64,{payload}"


def csv_link_html(frame: pd.DataFrame, filename: str, text: str | None = None) -> str:
    """Return an HTML link that downloads *frame* as *filename* (CSV).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    filename : str
        The file name offered (anything but letters, digits, ``-``, ``_``
        and ``.`` becomes ``_``; ``.csv`` is added when missing).
    text : str, optional
        The link text; default ``"Download N customers as CSV"``.

    Returns
    -------
    str
        ``<a class="journeylib-csv" download=... href="data:...">``.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "customers"
    if not safe.endswith(".csv"):
        safe += ".csv"
    label = text or f"Download {len(frame):,} customers as CSV"
    return (
        f'<a class="journeylib-csv" download="{html.escape(safe)}" href="{csv_data_url(frame)}">'
        f"{html.escape(label)}</a>"
    )


def _table_html(frame: pd.DataFrame, columns: list[str], max_rows: int) -> str:
    shown = frame[[c for c in columns if c in frame.columns]].head(max_rows).copy()
    for col in shown.columns:
        if isinstance(shown[col].dtype, pd.DatetimeTZDtype):
            shown[col] = shown[col].dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda x: "" if pd.isna(x) else f"{x:,.3g}")
    body = shown.to_html(index=False, escape=True, border=0, classes="journeylib-accounts-table", na_rep="")
    more = f"<p>First {max_rows} of {len(frame):,}; the CSV has them all.</p>" if len(frame) > max_rows else ""
    return f'<div style="max-height:24em;overflow:auto">{body}</div>{more}'


class AccountList(widgets.VBox):
    """A "List these customers" button, the list it shows and its CSV download link.

    Parameters
    ----------
    load : callable
        Called with no argument when the button is pressed; returns the
        account list (a DataFrame) for the owner's current choices, or
        raises (the message is shown in the red error area, never raised).
    describe : callable
        Returns the words for what is listed (e.g. ``"customers who dropped
        at Onboarding Completed — SMB"``), used in the heading and file name.
    columns : list of str, optional
        The columns shown on the page (the CSV has every column). Default:
        every column.
    max_rows : int, default 25
        Rows shown on the page.
    **kwargs
        Display options passed to :class:`ipywidgets.VBox`.

    Attributes
    ----------
    button : ipywidgets.Button
        "List these customers" (CSS class ``journeylib-list-button``).
    output : ipywidgets.HTML
        The heading, the table and the download link (class
        ``journeylib-accounts``); or "No customers for this choice."
    errors : ipywidgets.HTML
        The visible error area.
    accounts : pandas.DataFrame or None
        The last list.
    """

    def __init__(
        self,
        load: Callable[[], pd.DataFrame],
        describe: Callable[[], str],
        *,
        columns: list[str] | None = None,
        max_rows: int = SHOWN_ROWS,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self._load = load
        self._describe = describe
        self.columns = columns
        self.max_rows = max_rows
        self.accounts: pd.DataFrame | None = None
        self.button = widgets.Button(description="List these customers", icon="list", tooltip="Show the customers behind this count, with a CSV download")
        self.button.add_class("journeylib-list-button")
        self.button.on_click(lambda _: self.show())
        self.errors = widgets.HTML("")
        self.output = widgets.HTML("")
        self.output.add_class("journeylib-accounts")
        self.children = [self.button, self.errors, self.output]

    def clear(self) -> None:
        """Forget the list shown (the owner's choices changed)."""
        self.accounts = None
        self.output.value = ""
        self.errors.value = ""

    def show(self) -> None:
        """Load the list for the current choices and show it with its download link."""
        what = self._describe()
        try:
            frame = self._load()
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.accounts = None
            self.output.value = ""
            self.errors.value = error_html(f"{type(exc).__name__}: {exc}")
            return
        self.errors.value = ""
        self.accounts = frame
        heading = f"<h4>{html.escape(what[:1].upper() + what[1:])}: {len(frame):,}</h4>"
        if frame.empty:
            self.output.value = heading + "<p>No customers for this choice.</p>"
            return
        columns = self.columns or list(frame.columns)
        self.output.value = heading + _table_html(frame, columns, self.max_rows) + "<p>" + csv_link_html(frame, what) + "</p>"
