"""As-of snapshots: churn-risk training examples built at many dates from what was known then.

A churn-risk model is trained on *snapshots*: for a customer and an as-of day
``d``, the features read only rows timestamped on or before the end of ``d``
(UTC), and the label says whether the customer churned within ``horizon_days``
after it. Snapshots are taken on a grid of as-of days (weekly by default) and
computed in the engine, one SQL statement per feature family with the whole
grid joined (never a Python loop over dates or events).

Conventions
-----------
* **As-of day.** ``as_of_day`` is a whole UTC day (days since 1970-01-01);
  ``as_of`` is the instant at its end, the exclusive bound
  ``start of day d + 1``. An event, ticket, message or user belongs to the past
  of the snapshot when its time falls on day ``d`` or before. Every window
  ``Nd`` covers the days ``d - N + 1 .. d``.
* **Population.** A customer has a snapshot on day ``d`` when they signed up
  on or before ``d``, have not churned by the end of ``d`` (customers already
  churned are not examples) and, with ``population="converted"`` (the default
  when the journey definition has a conversion outcome: only paying accounts
  can churn), converted by the end of ``d``.
* **Label.** ``churned`` is 1.0 when the churn outcome of the definition
  happened after the end of ``d`` and at most ``horizon_days`` days after it,
  0.0 when it did not. A snapshot whose horizon runs past the data's end
  (``as_of + horizon_days > data_end``) is **censored**: its label is NaN, it
  is kept (it can be scored) but it is left out of training and evaluation,
  and the censored snapshots are counted in :attr:`Snapshots.exclusions`.
* **Stage features** come from the journey definition's milestone frame
  (:func:`journeylib.journey.stages.stage_milestones`, computed once for the
  scope at the data's end): a stage counts as entered on day ``d`` when its
  ``entered_at`` falls on or before ``d``. With ``occurrence: first`` (the
  default convention) that is exactly what was known on ``d``; a definition
  with ``occurrence: last`` moves entry times later as data arrives, so its
  stage features would under-report entries, and :func:`build_snapshots`
  refuses it.
* **Snapshot attributes.** ``segment`` and ``plan`` come from the customers
  table as exported (not time-travelled); ticket sentiment reads each
  ticket's text as exported, which may include replies written after the
  as-of day (see ``docs/churn-risk.md``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.customers.outcomes import outcome_spec
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import add_stage_exits, stage_milestones
from journeylib.scope import Scope, to_utc
from journeylib.store import Store
from journeylib.store.categories import source_categories, sources_of
from journeylib.store.dialect import sql_cast, sql_epoch_microseconds, sql_quote, sql_timestamp, sql_values
from journeylib.store.memory import shared_strings

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_WINDOWS",
    "DROP_WINDOWS",
    "Snapshots",
    "active_day_drop",
    "asof_days",
    "build_snapshots",
    "compact_columns",
    "day_end",
    "day_number",
    "expand_columns",
    "holdout_start_day",
]

#: Follow-up after the as-of day within which a churn counts (days).
DEFAULT_HORIZON_DAYS = 60
#: Share of the labelled as-of days of the grid that form an out-of-time test period (the latest ones).
DEFAULT_TEST_FRACTION = 0.3
#: Recent windows (days up to the as-of day) of the activity, ticket and e-mail counts.
DEFAULT_WINDOWS: tuple[int, ...] = (7, 14, 30)
#: The customer's own baseline: activity in days ``d - BASELINE_FROM + 1 .. d - BASELINE_TO`` (90 days ending 30 days ago).
BASELINE_FROM = 120
BASELINE_TO = 30
#: Shortest baseline (days after signup) for the activity ratios; shorter ones give NaN.
MIN_BASELINE_DAYS = 14
#: Weeks of the activity slope.
SLOPE_WEEKS = 8
#: Recent windows (days up to the as-of day, all shorter than ``BASELINE_TO``) of the active-day drop test against the
#: customer's own baseline.
DROP_WINDOWS: tuple[int, ...] = (14, 21, 28)
_US_PER_DAY = 86_400_000_000
_EPOCH = pd.Timestamp("1970-01-01T00:00:00Z")


def day_number(ts: Any) -> int:
    """Return the UTC day number (days since 1970-01-01) of a time.

    Parameters
    ----------
    ts : date-like
        A date, text or timestamp (naive values are UTC).

    Returns
    -------
    int
        The day number.

    Examples
    --------
    >>> day_number("2025-01-02T23:00:00Z")
    20090
    """
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return math.floor((t - _EPOCH) / pd.Timedelta(days=1))


def active_day_drop(recent_active: Any, window_days: int, baseline_active: Any, baseline_days: Any) -> tuple[np.ndarray, np.ndarray]:
    """Compare a customer's recent active days with its own baseline: share ratio and an exact one-sided drop test.

    Under "same daily chance of activity in both periods", the active days of
    the recent window, given all active days of the two periods, follow a
    hypergeometric law (Fisher's exact test for the 2×2 table recent/baseline
    × active/inactive). The score is ``-log10`` of the one-sided p-value
    ``P(K <= recent_active)``: 0 when nothing dropped, large only when the
    drop is more than the account's own volume explains. A low-volume account
    (2 active days in 90) with no activity in 14 days scores 0.13; an
    account active every other day (45 in 90) with 2 active days in 14
    scores 1.95, and with 1 active day 2.71. Active days are used,
    not event counts: events come in sessions, so a Poisson test on events
    would overstate the evidence.

    Parameters
    ----------
    recent_active : array-like of float
        Active days in the last ``window_days`` days.
    window_days : int
        Length of the recent window.
    baseline_active : array-like of float
        Active days in the baseline.
    baseline_days : array-like of float
        Length of the baseline (days); 0 gives NaN.

    Returns
    -------
    tuple of numpy.ndarray
        ``ratio``: recent share of active days over the baseline share (NaN
        when the baseline has no active day or no days); ``score``:
        ``-log10`` of the one-sided p-value (NaN without a baseline).
    """
    k = np.asarray(recent_active, dtype=float)
    a = np.asarray(baseline_active, dtype=float)
    b = np.asarray(baseline_days, dtype=float)
    w = float(window_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((b > 0) & (a > 0), (k / w) / (a / b), np.nan)
        p = stats.hypergeom.cdf(k, np.round(w + b), np.round(k + a), w)
        score = np.where(b > 0, -np.log10(np.clip(p, 1e-300, 1.0)), np.nan)
    return ratio, np.maximum(score, 0.0)


def day_end(day: int) -> pd.Timestamp:
    """Return the end of UTC day *day* (the start of the next day): the as-of instant of a snapshot.

    Parameters
    ----------
    day : int
        A day number (:func:`day_number`).

    Returns
    -------
    pandas.Timestamp
        UTC.

    Examples
    --------
    >>> day_end(20090)
    Timestamp('2025-01-03 00:00:00+0000', tz='UTC')
    """
    return _EPOCH + pd.Timedelta(days=int(day) + 1)


def asof_days(first: Any, last: Any, *, every_days: int = 7) -> list[int]:
    """Return the as-of day numbers from *last* back to *first*, every *every_days* days, oldest first.

    The grid is anchored on *last*, so the latest snapshot is always on it.

    Parameters
    ----------
    first, last : date-like
        The first and last possible as-of days (their UTC days).
    every_days : int, default 7
        Spacing of the grid.

    Returns
    -------
    list of int
        Day numbers.

    Raises
    ------
    ValueError
        If ``every_days`` is not a positive whole number or *last* is before *first*.

    Examples
    --------
    >>> asof_days("2025-01-01", "2025-01-15", every_days=7)
    [20089, 20096, 20103]
    """
    if isinstance(every_days, bool) or not isinstance(every_days, (int, np.integer)) or every_days < 1:
        msg = f"asof_days: every_days must be a positive whole number of days; got {every_days!r}"
        raise ValueError(msg)
    lo, hi = day_number(first), day_number(last)
    if hi < lo:
        msg = f"asof_days: last ({last}) is before first ({first})"
        raise ValueError(msg)
    return list(range(hi, lo - 1, -int(every_days)))[::-1]


def holdout_start_day(days: Any, *, test_fraction: float = DEFAULT_TEST_FRACTION) -> int:
    """Return the first as-of day of the out-of-time test period: the latest *test_fraction* of the labelled days.

    The rule :func:`journeylib.customers.risk.backtest_data` splits time by,
    shared with :func:`build_snapshots` so that a finer test grid starts
    where the backtest's test period starts. At least one day is left
    before the test period.

    Parameters
    ----------
    days : array-like of int
        The labelled as-of days of the training grid (repeats allowed).
    test_fraction : float, default 0.3
        Share of the distinct days in the test period (strictly between 0 and 1).

    Returns
    -------
    int
        The day number.

    Raises
    ------
    ValueError
        If *days* is empty or *test_fraction* is not strictly between 0 and 1.

    Examples
    --------
    >>> holdout_start_day([0, 7, 14, 21, 28, 35, 42, 49, 56, 63], test_fraction=0.3)
    49
    """
    if not 0 < test_fraction < 1:
        msg = f"holdout_start_day: test_fraction must be strictly between 0 and 1; got {test_fraction!r}"
        raise ValueError(msg)
    d = np.unique(np.asarray(days, dtype="int64"))
    if not len(d):
        msg = "holdout_start_day: no labelled as-of day to split in time"
        raise ValueError(msg)
    return int(d[min(len(d) - 1, max(1, int(np.floor(len(d) * (1 - test_fraction)))))])


@dataclass(frozen=True)
class Snapshots:
    """As-of snapshots with their labels, and how they were made.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per customer × as-of day; columns documented in
        :func:`build_snapshots`.
    catalog : pandas.DataFrame
        One row per feature column: ``feature``, ``family`` (``customer``,
        ``activity``, ``recency``, ``tickets``, ``email``, ``stages``),
        ``kind`` (``numeric`` or ``category``), ``description``.
    exclusions : pandas.DataFrame
        ``reason`` and ``snapshots``: snapshots kept but without a label
        (``censored``: the horizon runs past the data's end), and customer ×
        day pairs that are not snapshots (``already_churned``,
        ``not_converted``), counted.
    horizon_days : int
        The label horizon.
    data_end : pandas.Timestamp
        The end of the data (the scope's ``as_of``): labels need
        ``as_of + horizon_days <= data_end``.
    outcome : str
        The churn outcome of the definition.
    population : str
        ``converted`` or ``all``.
    every_days : int
        Spacing of the as-of grid (0 when the days were given): the grid
        training uses.
    scope : Scope
        The customers and data end.
    grid_days : tuple of int
        The as-of days of that grid (or the days given); empty when not
        recorded (then every snapshot is on it).
    test_every_days : int
        Spacing of the finer test grid (``build_snapshots(...,
        test_every_days=...)``), 0 when there is none.
    test_from_day : int or None
        First day of the finer test grid (the test period's start by
        :func:`holdout_start_day`), None when there is none.
    coded : tuple of str
        Columns of ``data`` held as codes of their numbers
        (``build_snapshots(..., compact=True)``, :func:`compact_columns`);
        empty for a table of plain columns. :meth:`expanded` gives the
        plain table.
    """

    data: pd.DataFrame
    catalog: pd.DataFrame
    exclusions: pd.DataFrame
    horizon_days: int
    data_end: pd.Timestamp
    outcome: str
    population: str
    every_days: int
    scope: Scope = field(repr=False)
    grid_days: tuple[int, ...] = field(repr=False, default=())
    test_every_days: int = 0
    test_from_day: int | None = None
    coded: tuple[str, ...] = ()

    @property
    def feature_columns(self) -> list[str]:
        """The feature columns, in catalog order."""
        return self.catalog["feature"].tolist()

    @property
    def categorical_columns(self) -> list[str]:
        """The feature columns of kind ``category``."""
        return self.catalog.loc[self.catalog["kind"] == "category", "feature"].tolist()

    @property
    def labelled(self) -> pd.DataFrame:
        """The snapshots with a label (not censored): what training and evaluation use."""
        return self.data[self.labelled_rows].reset_index(drop=True)

    @property
    def labelled_rows(self) -> np.ndarray:
        """Whether each row of ``data`` has a label (not censored): the rows of :attr:`labelled`, as a boolean mask."""
        return self.data["churned"].notna().to_numpy()

    def on_grid(self, as_of_day: Any) -> np.ndarray:
        """Return whether each as-of day is on the training grid (``grid_days``), not only on the finer test grid.

        Parameters
        ----------
        as_of_day : array-like of int
            Day numbers, e.g. ``data["as_of_day"]``.

        Returns
        -------
        numpy.ndarray
            Booleans; all True when no finer test grid was built.
        """
        d = np.asarray(as_of_day, dtype="int64")
        if not self.test_every_days or not self.grid_days:
            return np.ones(len(d), dtype=bool)
        return np.isin(d, np.asarray(self.grid_days, dtype="int64"))

    def n_excluded(self, reason: str) -> int:
        """Return how many snapshots (or customer × day pairs) were set aside for *reason*."""
        rows = self.exclusions[self.exclusions["reason"] == reason]
        return int(rows["snapshots"].sum()) if len(rows) else 0

    def expanded(self) -> Snapshots:
        """Return these snapshots with the columns of :attr:`coded` as their numbers (self when there are none).

        Returns
        -------
        Snapshots
            The table ``build_snapshots(..., compact=False)`` returns, the
            same values and dtypes (:func:`expand_columns`).
        """
        if not self.coded:
            return self
        return dataclasses.replace(self, data=expand_columns(self.data, self.coded), coded=())

    def copy(self) -> Snapshots:
        """Return a copy whose tables can be changed without changing this one."""
        return dataclasses.replace(self, data=self.data.copy(), catalog=self.catalog.copy(), exclusions=self.exclusions.copy())


# -- compact columns -------------------------------------------------------------------------
def _compact(col: pd.Series) -> pd.Series | None:
    """Return *col* as a pandas Categorical of its values (codes and distinct values), or None to keep it.

    None unless *col* is an integer or float column (not bool) that takes at
    most half its bytes that way, and expanding the result gives back its
    bytes exactly (so never for -0.0 beside 0.0, or NaNs with another payload).
    """
    if not isinstance(col.dtype, np.dtype) or col.dtype.kind not in "iuf":
        return None
    values = col.to_numpy()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if len(uniques) >= np.iinfo(np.int32).max:
        return None
    packed = pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=values.dtype))
    del codes
    if packed.codes.nbytes + packed.categories.to_numpy().nbytes > values.nbytes // 2:
        return None
    back = _expanded(packed)
    if back.dtype != values.dtype or back.tobytes() != values.tobytes():
        return None
    return pd.Series(packed, index=col.index, name=col.name, copy=False)


def _expanded(packed: pd.Categorical) -> np.ndarray:
    """Return the values of a Categorical of numbers (:func:`_compact`) as an array of the categories' dtype."""
    cats = packed.categories.to_numpy()
    codes = packed.codes
    if (codes < 0).any():
        return np.asarray(pd.api.extensions.take(cats, codes, allow_fill=True, fill_value=np.nan))
    return cats.take(codes)


def _expanded_series(col: pd.Series) -> pd.Series:
    """Return the coded column *col* (:func:`_compact`) as a Series of its numbers, same index and name."""
    return pd.Series(_expanded(col.array), index=col.index, name=col.name, copy=False)


def compact_columns(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Return *frame* with its numeric columns of few distinct values held as codes, and those columns' names.

    A column of integers or floats whose codes and distinct values take at
    most half its bytes is held as a pandas ``Categorical`` of its values
    (e.g. a count of a few hundred distinct values: 1 or 2 bytes a row
    instead of 8); :func:`expand_columns` gives back the original column,
    byte for byte (a column that would not come back exactly is kept as it
    is). At 10M events the snapshot table's 242 MiB take about 100 MiB.
    The other columns are the frame's own (not copied).

    Parameters
    ----------
    frame : pandas.DataFrame
        E.g. :attr:`Snapshots.data`.
    columns : sequence of str, optional
        The columns that may be held as codes (default: all).

    Returns
    -------
    frame : pandas.DataFrame
        The same columns in the same order, index *frame*'s.
    coded : list of str
        The columns held as codes (read them with :func:`expand_columns`;
        a ``Categorical`` column is otherwise a category, not a number).

    Examples
    --------
    >>> f = pd.DataFrame({"n": [3, 1, 3, 3] * 4, "x": np.arange(16) / 8})
    >>> small, coded = compact_columns(f)
    >>> coded, str(small["n"].dtype)
    (['n'], 'category')
    >>> expand_columns(small, coded).equals(f)
    True
    """
    allowed = set(frame.columns if columns is None else columns)
    out: dict[Any, pd.Series] = {}
    coded: list[str] = []
    for c in frame.columns:
        packed = _compact(frame[c]) if c in allowed else None
        if packed is not None:
            coded.append(c)
        out[c] = frame[c] if packed is None else packed
    return pd.DataFrame(out, index=frame.index, columns=frame.columns, copy=False), coded


def expand_columns(frame: pd.DataFrame, coded: Sequence[str]) -> pd.DataFrame:
    """Return *frame* with the columns *coded* (from :func:`compact_columns`) as their values again.

    Parameters
    ----------
    frame : pandas.DataFrame
        A frame of :func:`compact_columns`, or rows of it (``take``, a
        mask, a slice).
    coded : sequence of str
        Its columns held as codes; those *frame* lacks are skipped.

    Returns
    -------
    pandas.DataFrame
        The same columns, order and index; the coded columns as the arrays
        they were (same dtype and bytes), the others *frame*'s own (not
        copied).
    """
    todo = [c for c in coded if c in frame.columns]
    if not todo:
        return frame
    out = {c: frame[c] for c in frame.columns}
    for c in todo:
        out[c] = _expanded_series(frame[c])
    return pd.DataFrame(out, index=frame.index, columns=frame.columns, copy=False)


# -- SQL pieces ------------------------------------------------------------------------------
def _day_sql(expr: str) -> str:
    """Return the SQL day number (UTC) of a timestamp expression."""
    return sql_cast(f"floor({sql_epoch_microseconds(expr)} / {_US_PER_DAY})", "integer")


def _dayf_sql(expr: str) -> str:
    """Return the SQL fractional day number (UTC) of a timestamp expression."""
    return f"{sql_epoch_microseconds(expr)} / {float(_US_PER_DAY)!r}"


def _over(expr: str, back_from: int | None, back_to: int = 0) -> str:
    """Window aggregate over the days ``d - back_from .. d - back_to`` of the same customer (None = since the start)."""
    lo = "UNBOUNDED PRECEDING" if back_from is None else f"{int(back_from)} PRECEDING"
    hi = "CURRENT ROW" if back_to == 0 else f"{int(back_to)} PRECEDING"
    return f"{expr} OVER (PARTITION BY customer_id ORDER BY day RANGE BETWEEN {lo} AND {hi})"


def _sum_over(column: str, back_from: int | None, back_to: int = 0) -> str:
    """:func:`_over` of ``sum(column)`` for a column of whole numbers, as a 64-bit integer.

    DuckDB sums integers as 128-bit integers, which its result holds in 16
    bytes a value (and pandas receives as floats); the counts of a family fit
    in 64 bits, and as floats they are the same numbers.
    """
    return sql_cast(_over(f"sum({column})", back_from, back_to), "integer")


def _in_list(values: Sequence[str]) -> str:
    return ", ".join(sql_quote(v) for v in values) or "NULL"


def _timeline(daily: str, cols: Sequence[str], selects: Sequence[str]) -> str:
    """Return SQL stacking a family's daily rows with the grid rows and evaluating the window *selects* at the grid rows."""
    zeros = ", ".join(f"0 AS {c}" for c in cols)
    names = ", ".join(cols)
    # the grid rows are named by their row number (_g), not by customer and day: no text per row in the result
    return f"""
        WITH daily AS ({daily}),
             u AS (SELECT customer_id, day, {names}, 0 AS is_grid, CAST(NULL AS BIGINT) AS _g FROM daily
                   UNION ALL
                   SELECT DISTINCT customer_id, as_of_day AS day, {zeros}, 1 AS is_grid, _g FROM _jl_grid),
             w AS (SELECT _g, is_grid, {", ".join(selects)} FROM u)
        SELECT * FROM w WHERE is_grid = 1"""


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        msg = f"build_snapshots: {name} must be a positive whole number of days; got {value!r}"
        raise ValueError(msg)
    return int(value)


# -- the public builder ----------------------------------------------------------------------
def build_snapshots(
    store: Store,
    *,
    definition: JourneyDefinition,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    every_days: int = 7,
    test_every_days: int | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    as_of_dates: Sequence[Any] | None = None,
    first_as_of: Any = None,
    last_as_of: Any = None,
    outcome: str = "churn",
    population: str = "auto",
    windows: Sequence[int] = DEFAULT_WINDOWS,
    ticket_scores: pd.DataFrame | None = None,
    activity_sources: Sequence[str] = ("product",),
    exclude_sources: Sequence[str] = ("crm",),
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    compact: bool = False,
) -> Snapshots:
    """Build churn-risk snapshots (features known on each as-of day, and the label) for a grid of days.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Gives the churn outcome, the conversion outcome and the stages.
    horizon_days : int, default 60
        The label: churn within this many days after the as-of day (30, 60,
        90 ...).
    every_days : int, default 7
        Spacing of the grid (weekly by default), anchored on the last day.
    test_every_days : int, optional
        A finer grid for the out-of-time test period (e.g. 1: daily), added
        to the ``every_days`` grid; it must divide ``every_days``. It covers
        the labelled days of the test period :func:`holdout_start_day` finds on
        the ``every_days`` grid with ``test_fraction``: from its start to the
        last labelled day of that grid (so the test window is the weekly
        one). Training (:func:`journeylib.customers.risk.backtest_data`)
        still uses only the ``every_days`` grid (:meth:`Snapshots.on_grid`).
        Default (or equal to ``every_days``): no finer grid. The extra days
        count in ``already_churned`` and ``not_converted`` like grid days.
    test_fraction : float, default 0.3
        With ``test_every_days``: the share of labelled ``every_days`` days
        in the test period; give ``backtest_data`` the same or a smaller one.
    as_of_dates : sequence of date-like, optional
        Explicit as-of days instead of the grid (e.g. one day, to score);
        each on or before the day of the data's end (that day may be
        partial: its snapshot reads the data up to the end).
    first_as_of, last_as_of : date-like, optional
        Range of the grid: default from the first signup to the last complete
        day of the data (the day before ``as_of`` unless it is a day's end).
    outcome : str, default "churn"
        The outcome of the definition that is the label.
    population : {"auto", "converted", "all"}, default "auto"
        ``converted``: snapshots of customers who converted by the as-of day;
        ``auto`` is ``converted`` when the definition has a conversion outcome.
    windows : sequence of int, default (7, 14, 30)
        The recent windows of the activity, ticket and e-mail counts.
    ticket_scores : pandas.DataFrame, optional
        Per-ticket sentiment (``ticket_id``, ``compound``, ``polarity``), e.g.
        :meth:`journeylib.Journey.scored_tickets`; without it there are no
        sentiment features.
    activity_sources : sequence of str, default ("product",)
        Source kinds (:mod:`journeylib.store.categories`) or names whose
        events are activity.
    exclude_sources : sequence of str, default ("crm",)
        Source kinds or names without a recency feature (CRM records encode
        commercial outcomes).
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        The scope; its ``as_of`` is the data's end (default: the latest event).
    cache : ResultCache, optional
        Share the milestone frame with the other analyses of a context.
    compact : bool, default False
        Keep the numeric columns of the activity, ticket, e-mail and stage
        families that have few distinct values as codes
        (:func:`compact_columns`; listed in :attr:`Snapshots.coded`): at 10M
        events the table takes about 100 MiB instead of 242.
        :meth:`Snapshots.expanded` gives the table of ``compact=False``. The
        columns are coded as each family is built either way (so the families
        built first are held small while the next ones run); without
        *compact* they are expanded once all are built.

    Returns
    -------
    Snapshots
        ``data`` has one row per customer × as-of day, ordered by as-of day
        and customer, with the columns below (``<w>`` a window of
        ``windows``, ``<k>`` a source kind):

        ``customer_id``, ``as_of_day``, ``as_of``
            The customer, the day number and its end (UTC).
        ``churned``
            1.0 if the outcome happened within ``horizon_days`` after
            ``as_of``, 0.0 if not, NaN if censored.
        ``censored``
            Whether the horizon runs past the data's end.
        ``churn_at``, ``days_to_churn``
            When the outcome happened (NaT if not by the data's end) and days
            from ``as_of`` to it: outcome information, never features.
        ``segment``, ``plan``
            Snapshot attributes (category features).
        ``tenure_days``, ``paying_days``, ``users``
            Days from signup and from conversion (NaN if not converted) to
            ``as_of``; users created by then (users without a creation time count).
        ``activity_<w>d``, ``active_days_<w>d``
            Activity events and days with one in the last ``w`` days.
        ``baseline_days``, ``baseline_per_day``, ``baseline_active_share``
            The customer's own baseline: days of ``d-119 .. d-30`` after
            signup, activity events per such day, and the share of such days
            with activity (NaN without baseline days).
        ``activity_ratio_14d``, ``activity_ratio_30d``
            Activity per day in the window over the baseline per day (NaN
            when the baseline is shorter than 14 days or empty).
        ``activity_slope_8w``
            Least-squares slope of the weekly activity over the last 8 weeks,
            per week, divided by the mean weekly activity (NaN when none).
        ``usual_gap_days``
            Baseline days per active baseline day (how often the customer is
            usually active; NaN without baseline activity).
        ``days_since_<k>``
            Whole days from the last event of source kind ``<k>`` (activity
            sources and every kind not excluded) to the as-of day; NaN if none.
        ``tickets_<w>d``, ``tickets_high_priority_30d``, ``open_tickets``, ``days_since_ticket``, ``satisfaction_90d``
            Tickets created in the window; high or urgent ones in 30 days;
            tickets created by ``d`` and not solved by ``d``; whole days since
            the last ticket (NaN if none); mean satisfaction (0..1) of tickets
            solved in the last 90 days (NaN if none rated).
        ``negative_tickets_<w>d``, ``ticket_compound_30d``
            With ``ticket_scores``: negative tickets created in the window;
            mean sentiment compound of tickets created in 30 days.
        ``emails_delivered_30d``, ``emails_opened_30d``, ``emails_clicked_30d``, ``email_open_rate_60d``, ``days_since_email_open``, ``unsubscribed``
            Message statuses in the window; opened / delivered in 60 days (at most 1)
            (NaN if nothing delivered); days since the last open; whether the
            customer unsubscribed by ``d`` (0/1).
        ``stage``, ``stages_reached``, ``days_in_stage``, ``days_in_stage_vs_peers``, ``stage_overdue``
            The stage entered last by ``as_of`` (category); stages entered;
            days since entering it; that over the median of the customers of
            the same snapshot day in the same stage; 1.0 when it exceeds the
            median time peers took to move on from that stage (entries and
            exits by ``as_of``), 0.0 when not, NaN when no peer had moved on.

    Raises
    ------
    ValueError
        If ``horizon_days``, ``every_days``, ``test_every_days`` or
        ``windows`` are not positive whole numbers, ``test_every_days`` does
        not divide ``every_days`` or comes with ``as_of_dates``,
        ``test_fraction`` is not strictly between 0 and 1, ``population`` is unknown, the outcome is not in the
        definition, the definition uses ``occurrence: last``, or
        ``ticket_scores`` lacks ``ticket_id`` / ``compound`` / ``polarity``.
    EmptyResultError
        If no customer × day pair is a snapshot.

    Warns
    -----
    StatisticalWarning
        When snapshots are censored (with their count).
    """
    function = "build_snapshots"
    horizon = _check_positive_int(horizon_days, "horizon_days")
    step = _check_positive_int(every_days, "every_days")
    test_step = 0 if test_every_days is None else _check_positive_int(test_every_days, "test_every_days")
    if test_step == step:
        test_step = 0  # the same grid: nothing to add
    if test_step:
        if as_of_dates is not None:
            msg = f"{function}: test_every_days={test_step} needs the every_days grid; it cannot refine given as_of_dates"
            raise ValueError(msg)
        if step % test_step:
            msg = (
                f"{function}: test_every_days must divide every_days (so the test grid holds the training grid's days); "
                f"got test_every_days={test_step}, every_days={step}"
            )
            raise ValueError(msg)
        if not 0 < test_fraction < 1:
            msg = f"{function}: test_fraction must be strictly between 0 and 1; got {test_fraction!r}"
            raise ValueError(msg)
    wins = tuple(sorted({_check_positive_int(w, "windows") for w in windows} | {14, 30}))
    if population not in ("auto", "converted", "all"):
        msg = f"{function}: population must be 'auto', 'converted' or 'all'; got {population!r}"
        raise ValueError(msg)
    col, _ = outcome_spec(definition, outcome)
    if definition.conventions.occurrence != "first":
        msg = (
            f"{function}: the journey definition {definition.name!r} uses conventions.occurrence "
            f"{definition.conventions.occurrence!r}; stage entry times then move as data arrives, so entries known on "
            "an as-of day cannot be read from one milestone frame. Use occurrence: first for risk snapshots."
        )
        raise ValueError(msg)
    if ticket_scores is not None:
        missing = [c for c in ("ticket_id", "compound", "polarity") if c not in ticket_scores.columns]
        if missing:
            msg = f"{function}: ticket_scores needs columns ticket_id, compound, polarity; missing {missing}"
            raise ValueError(msg)
    scope = Scope.resolve(
        store, scope, function=function, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
        signup_to=signup_to, sample_n=sample_n, random_state=random_state,
    )
    conv_col = next(
        (f"{feature_slug(n)}_at" for n, o in definition.outcomes.items() if o.customer_field == "converted_at"), None
    )
    pop = population
    if pop == "auto":
        pop = "converted" if conv_col is not None and outcome != "conversion" else "all"
    if pop == "converted" and conv_col is None:
        msg = f"{function}: population='converted' needs an outcome with customer_field converted_at in the definition"
        raise ValueError(msg)

    outs = customer_outcomes_data(store, definition=definition, scope=scope)
    data_end = pd.Timestamp(scope.as_of)
    last_full = day_number(data_end) - (0 if day_end(day_number(data_end)) <= data_end + pd.Timedelta(microseconds=1) else 1)
    if as_of_dates is not None:
        days = sorted({day_number(to_utc(d, function=function, name="as_of_dates") or d) for d in as_of_dates})
        late = [d for d in days if d > day_number(data_end)]  # the data end's own day may be partial (scoring)
        if late:
            msg = (
                f"{function}: as_of_dates must be on or before the day of the data's end ({data_end}); "
                f"{len(late)} do not, e.g. {day_end(late[0]) - pd.Timedelta(days=1):%Y-%m-%d}"
            )
            raise ValueError(msg)
        step_used = 0
    else:
        first = first_as_of if first_as_of is not None else outs["signup_at"].min()
        last = last_as_of if last_as_of is not None else day_end(last_full) - pd.Timedelta(days=1)
        days = asof_days(first, min(pd.Timestamp(last) if pd.Timestamp(last).tzinfo else pd.Timestamp(last).tz_localize("UTC"),
                                    day_end(last_full) - pd.Timedelta(days=1)), every_days=step)
        step_used = step
    if not days:
        msg = f"{function}: no as-of day between the first signup and the data's end ({data_end})"
        raise EmptyResultError(msg)
    grid_days = tuple(int(d) for d in days)

    def dayf(s: pd.Series) -> np.ndarray:
        t = pd.to_datetime(s, utc=True)
        return ((t - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=float)

    out_frame = pd.DataFrame(
        {
            "customer_id": outs["customer_id"].astype(str),
            "signup_dayf": dayf(outs["signup_at"]),
            "convert_dayf": dayf(outs[conv_col]) if conv_col is not None else np.nan,
            "churn_dayf": dayf(outs[col]),
        }
    )
    need_conv = "TRUE" if pop == "all" else "o.convert_dayf < g.as_of_day + 1"
    # The customer × day pairs name the customer by its row of out_frame (_k), not by its id: at 10M events they
    # are ~2M pairs, and an id per pair was ~2M text objects (~130 MB) held while the families were built.
    out_ids = out_frame["customer_id"].to_numpy(dtype=object)
    keyed = out_frame.assign(_k=np.arange(len(out_frame), dtype="int64"))

    def grid_pairs(on_days: Sequence[int]) -> pd.DataFrame:
        return store.query(
            f"""SELECT o._k, g.as_of_day,
                       coalesce(o.churn_dayf < g.as_of_day + 1, FALSE) AS churned_before,
                       coalesce({need_conv}, FALSE) AS in_population
                FROM _jl_out o JOIN ({sql_values([str(d) for d in on_days], "as_of_day")}) g
                  ON o.signup_dayf < g.as_of_day + 1""",
            _jl_out=keyed,
        )

    pairs = grid_pairs(days)
    test_from: int | None = None
    if test_step:
        # the backtest's rule on the grid days that hold a snapshot with a label (the censoring rule below)
        end_day_f = float((data_end - _EPOCH) / pd.Timedelta(days=1))
        held = pairs.loc[~pairs["churned_before"].fillna(False).astype(bool) & pairs["in_population"].fillna(False).astype(bool),
                         "as_of_day"].astype("int64")
        lab_days = sorted({int(d) for d in held if d + 1 + horizon <= end_day_f + 1e-9})
        if lab_days:
            test_from = holdout_start_day(lab_days, test_fraction=test_fraction)
            # anchored on a grid day, so the finer grid holds the grid's own days; only the days it adds are queried
            extra = sorted(set(range(max(lab_days), test_from - 1, -test_step)) - set(days))
            if extra:
                pairs = pd.concat([pairs, grid_pairs(extra)], ignore_index=True)
                days = sorted(set(days) | set(extra))
        else:
            msg = (
                f"{function}: no snapshot of the {step}-day grid has its {horizon}-day horizon closed by the data's end "
                f"({data_end:%Y-%m-%d}), so there is no test period; the test_every_days={test_step} grid is not built"
            )
            warnings.warn(msg, StatisticalWarning, stacklevel=2)
            test_step = 0
    churned_before = pairs["churned_before"].fillna(False).astype(bool)
    in_pop = pairs["in_population"].fillna(False).astype(bool)
    keep = ~churned_before & in_pop
    n_already, n_not_conv = int(churned_before.sum()), int((~churned_before & ~in_pop).sum())
    # The grid in the table's order (as-of day, then customer): each family comes back in this order, so its
    # columns are placed in the table without a merge. One text object per customer id (shared_strings).
    kept = pairs.loc[keep]
    grid = pd.DataFrame({
        "customer_id": out_ids[kept["_k"].to_numpy(dtype="int64")],  # one text object per customer (out_frame's)
        "as_of_day": kept["as_of_day"].to_numpy().astype("int64"),
    })
    del pairs, kept
    grid = grid.sort_values(["as_of_day", "customer_id"], kind="mergesort", ignore_index=True)
    grid["_g"] = np.arange(len(grid), dtype="int64")  # a grid row's number: how the families' results name it (_on_grid)
    if grid.empty:
        msg = (
            f"{function}: no snapshots: {len(days)} as-of day(s), {len(outs)} customers in scope ({scope.describe()}), "
            f"{n_already} pairs already churned, {n_not_conv} not converted (population {pop!r})"
        )
        raise EmptyResultError(msg)

    catalog: list[dict[str, str]] = []

    def add(feature: str, family: str, description: str, kind: str = "numeric") -> None:
        catalog.append({"feature": feature, "family": family, "kind": kind, "description": description})

    # Each family's columns are kept as they are built (one family's frame at a time beside them) and the table is
    # built once from those columns, in the grid's order, without copying them (copy=False: one block per column).
    keys = ["customer_id", "as_of_day"]
    customer = _customer_family(store, grid, out_frame, scope, add)
    customer_dtypes = customer.dtypes.drop("_g")
    present = np.zeros(len(grid), dtype=bool)  # grid rows of customers in scope: the table's rows
    present[customer["_g"].to_numpy(dtype=np.intp)] = True
    customers = _on_grid(grid, customer, day="as_of_day")  # (a grid row without its customer: missing values)
    del customer
    columns: dict[str, pd.Series] = {c: customers[c] for c in customers.columns if c not in keys}
    del customers
    # The stage family runs first: its milestone statement and window medians (the largest statements) then run
    # beside the customer family's columns only. Each family's catalog entries are kept apart and put in the
    # families' order: customer, activity, tickets, e-mail, stages.
    entries: dict[str, list[dict[str, str]]] = {f: [] for f in ("activity", "tickets", "email", "stages")}

    def adding(to: list[dict[str, str]]) -> Any:
        def add_to(feature: str, family: str, description: str, kind: str = "numeric") -> None:
            to.append({"feature": feature, "family": family, "kind": kind, "description": description})
        return add_to

    families = (
        lambda: _stage_family(store, grid, definition, scope, cache, adding(entries["stages"])),
        lambda: _activity_family(store, grid, scope, wins, activity_sources, exclude_sources, adding(entries["activity"])),
        lambda: _ticket_family(store, grid, scope, wins, ticket_scores, adding(entries["tickets"])),
        lambda: _email_family(store, grid, scope, adding(entries["email"])),
    )
    coded: list[str] = []
    for family in families:
        for c, values in _grid_columns(family(), grid, keys).items():
            small = _compact(values)
            columns[c] = values if small is None else small
            if small is not None:
                coded.append(c)
            del values, small
    for f in ("activity", "tickets", "email", "stages"):
        catalog.extend(entries[f])
    cat = pd.DataFrame(catalog, columns=["feature", "family", "kind", "description"])
    coded = [c for c in cat["feature"] if c in set(coded)]  # in the table's order

    # labels
    ids, day = grid["customer_id"], grid["as_of_day"]
    as_of_end = day.to_numpy(dtype=float) + 1.0
    churn = ids.map(out_frame.set_index("customer_id")["churn_dayf"]).to_numpy(dtype=float)
    end_f = float((data_end - _EPOCH) / pd.Timedelta(days=1))
    censored = as_of_end + horizon > end_f + 1e-9
    within = np.isfinite(churn) & (churn - as_of_end <= horizon)
    columns.update({
        "customer_id": ids,
        "as_of_day": day,
        "as_of": _EPOCH + pd.to_timedelta(day + 1, unit="D"),
        "churned": pd.Series(np.where(censored, np.nan, within.astype(float))),
        "censored": pd.Series(censored),
        "churn_at": pd.to_datetime(ids.map(outs.set_index(outs["customer_id"].astype(str))[col]), utc=True),
        "days_to_churn": pd.Series(churn - as_of_end),
    })
    front = ["customer_id", "as_of_day", "as_of", "churned", "censored", "churn_at", "days_to_churn"]
    order = front + cat["feature"].tolist()
    def column(c: str) -> pd.Series:  # a coded column expanded as it is placed (one column at a time held twice)
        values = columns.pop(c)
        if compact or c not in coded or not present.all():
            return values
        return _expanded_series(values)

    data = pd.DataFrame({c: column(c) for c in order}, columns=order, copy=False)
    if not present.all():  # the customer family's columns back to their types (the left join made them nullable)
        data = data[present].reset_index(drop=True).astype(customer_dtypes.to_dict())
        censored = censored[present]
        if not compact:
            data = expand_columns(data, coded)
    if not compact:
        coded = []
    n_cens = int(censored.sum())
    exclusions = pd.DataFrame(
        {"reason": ["censored", "already_churned", "not_converted"], "snapshots": [n_cens, n_already, n_not_conv]}
    )
    if n_cens:
        msg = (
            f"{function}: {n_cens} of {len(data)} snapshots are censored (their {horizon}-day horizon runs past the data's "
            f"end, {data_end:%Y-%m-%d}); they have no label and are left out of training and evaluation."
        )
        warnings.warn(msg, StatisticalWarning, stacklevel=2)
    return Snapshots(
        data=data, catalog=cat, exclusions=exclusions, horizon_days=horizon, data_end=data_end,
        outcome=outcome, population=pop, every_days=step_used, scope=scope, grid_days=grid_days,
        test_every_days=test_step, test_from_day=test_from, coded=tuple(coded),
    )


# -- families --------------------------------------------------------------------------------
def _on_grid(grid: pd.DataFrame, raw: pd.DataFrame | list[pd.DataFrame], *, day: str) -> pd.DataFrame:
    """Return *raw* on *grid*'s rows, in *grid*'s order: the left join of *grid* with *raw* on customer and day.

    *raw* names its grid row by ``_g`` (the row's position in *grid*, its
    ``_g`` column), or else by ``customer_id`` and the day column *day* (at
    most one row per pair); its other columns but ``is_grid`` are taken, one
    at a time, at the grid rows' positions, beside *grid*'s ``customer_id``
    and ``as_of_day``; index 0..n-1. A grid row that *raw* lacks gets
    missing values (whole numbers become floats, as in a merge). Unlike
    renaming, dropping and merging *raw*, no whole copy of *raw* is made
    besides the result. *raw* may be a list of frames naming grid rows by
    ``_g`` (results for blocks of the grid): their rows are stacked.
    """
    parts = raw if isinstance(raw, list) else [raw]
    if "_g" in parts[0].columns:
        g = np.concatenate([r["_g"].to_numpy(dtype=np.intp) for r in parts])
        pos = np.full(len(grid), -1, dtype=np.intp)
        pos[g] = np.arange(len(g), dtype=np.intp)
    else:  # one frame naming its rows by customer and day
        (only,) = parts
        pos = pd.MultiIndex.from_arrays([only["customer_id"].to_numpy(), only[day].to_numpy()]).get_indexer(
            pd.MultiIndex.from_arrays([grid["customer_id"].to_numpy(), grid["as_of_day"].to_numpy()])
        )
    fill = bool((pos < 0).any())
    cols: dict[str, Any] = {"customer_id": grid["customer_id"].to_numpy(), "as_of_day": grid["as_of_day"].to_numpy()}
    for c in parts[0].columns:
        if c not in ("customer_id", day, "is_grid", "_g"):
            col = parts[0][c] if len(parts) == 1 else pd.concat([r[c] for r in parts], ignore_index=True)  # a column at a time
            values = col.to_numpy() if isinstance(col.dtype, np.dtype) else col.array
            cols[c] = pd.api.extensions.take(values, pos, allow_fill=fill)
            del col, values
    return pd.DataFrame(cols, copy=False)


#: About how many grid rows (customer × as-of day pairs) a family's window statement reads at a time
#: (:func:`_timeline_on_grid`; whole customers per block).
FAMILY_BLOCK_ROWS = 50_000


def _timeline_on_grid(
    store: Store, grid: pd.DataFrame, daily: str, cols: Sequence[str], selects: Sequence[str],
    frames: dict[str, pd.DataFrame] | None = None, *, in_blocks: bool = True,
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Return the family statement :func:`_timeline` evaluated at *grid*'s rows, on the grid (:func:`_on_grid`).

    The statement runs for blocks of about ``FAMILY_BLOCK_ROWS`` grid rows
    holding whole customers (``_jl_grid`` is the block; *frames* are the
    statement's other tables). Its windows are partitioned by customer and
    its daily rows are those of the block's customers, so a grid row's values
    are those of one statement over the whole grid; DuckDB's working memory
    and its result are a block's (at 10M events ~575,000 grid rows).

    Only for statements whose values do not depend on how DuckDB orders its
    work: sums of whole numbers, counts, maxima. A sum of floats over a
    window can differ in its last bits when the rows are split otherwise
    (measured at 10M events: the ticket family's mean sentiment in 0.007% of
    the rows); *in_blocks* False runs one statement over the whole grid.

    With *derive* (a function of the statement's values on some grid rows,
    returning columns computed row by row from them, in those rows' order),
    each block's values are derived as soon as the block's statement has
    run, and only the derived columns are kept, written at the block's rows:
    the statement's results of all blocks are never held at once (at 10M
    events the activity family's were ~120 MB beside its derived columns).
    The result is then *grid*'s ``customer_id`` and ``as_of_day`` and the
    derived columns (the derived columns' own ``customer_id`` and
    ``as_of_day``, if any, are not kept).
    """
    sql = _timeline(daily, cols, selects)
    others = dict(frames or {})
    codes = pd.factorize(grid["customer_id"].to_numpy())[0]
    ends = np.cumsum(np.bincount(codes)) if len(codes) else np.zeros(0, dtype=np.int64)
    first = ends - np.bincount(codes) if len(codes) else ends  # grid rows before each customer (in first-seen order)
    block = np.unique((first // max(int(FAMILY_BLOCK_ROWS), 1))[codes], return_inverse=True)[1] if len(codes) else codes
    n_blocks = int(block.max()) + 1 if len(block) else 1  # (a customer longer than a block leaves no block empty)
    if n_blocks == 1 or not in_blocks:
        out = _on_grid(grid, store.query(sql, None, _jl_grid=grid, **others), day="day")
        return out if derive is None else _keyed(grid, derive(out))
    if derive is None:
        raws = [store.query(sql, None, _jl_grid=grid[block == b], **others) for b in range(n_blocks)]
        return _on_grid(grid, raws, day="day")
    derived: dict[str, np.ndarray] = {}
    for b in range(n_blocks):
        at = np.flatnonzero(block == b)
        part = grid.iloc[at][["customer_id", "as_of_day"]].reset_index(drop=True)
        part["_g"] = np.arange(len(part), dtype="int64")  # the block's rows named by their place in it
        values = derive(_on_grid(part, store.query(sql, None, _jl_grid=part, **others), day="day"))
        del part
        for c in values.columns:
            if c in ("customer_id", "as_of_day"):
                continue
            v = values[c].to_numpy()
            full = derived.get(c)
            if full is None:
                full = derived[c] = np.empty(len(grid), dtype=v.dtype)
            elif full.dtype != v.dtype:  # (the families derive columns of one type)
                full = derived[c] = full.astype(np.result_type(full.dtype, v.dtype))
            full[at] = v
        del values
    return _keyed(grid, pd.DataFrame(derived, copy=False))


def _keyed(grid: pd.DataFrame, derived: pd.DataFrame) -> pd.DataFrame:
    """Return *grid*'s ``customer_id`` and ``as_of_day`` beside the columns of *derived* (in *grid*'s order), index 0..n-1."""
    cols: dict[str, Any] = {"customer_id": grid["customer_id"].to_numpy(), "as_of_day": grid["as_of_day"].to_numpy()}
    cols.update({c: derived[c].to_numpy() for c in derived.columns if c not in cols})
    return pd.DataFrame(cols, copy=False)


def _grid_columns(frame: pd.DataFrame, grid: pd.DataFrame, keys: list[str]) -> dict[str, pd.Series]:
    """Return the columns of a family's *frame* (all but *keys*) in the order of *grid*'s rows, index 0..n-1.

    A family builds its frame from *grid* in *grid*'s order; its columns are
    then used as they are. A frame in any other order (or with other rows)
    is merged onto *grid* (a left join on *keys*, NaN where it has no row).
    """
    aligned = (
        len(frame) == len(grid)
        and frame.index.equals(grid.index)
        and all(np.array_equal(frame[k].to_numpy(), grid[k].to_numpy()) for k in keys)
    )
    if not aligned:
        frame = grid.merge(frame, on=keys, how="left")
    return {c: frame[c] for c in frame.columns if c not in keys and c != "_g"}


def _customer_family(store: Store, grid: pd.DataFrame, out_frame: pd.DataFrame, scope: Scope, add: Any) -> pd.DataFrame:
    """Return the customer family: one row per grid row of a customer in scope, named by its grid row (``_g``).

    The per-row values (tenure, paying days, users) come from one statement;
    ``segment`` and ``plan`` are read once per customer and placed on the
    rows by the customers' positions, so the rows hold one text object per
    customer id, segment and plan value (the statement's text per row was
    three objects per grid row: about 1.7 million at 10M events).
    """
    sql = f"""
        WITH us AS (
            SELECT g._g, count(u.user_id) AS users
            FROM _jl_grid g JOIN users u ON u.customer_id = g.customer_id
            WHERE u.created_at IS NULL OR {_day_sql("u.created_at")} <= g.as_of_day
            GROUP BY g._g)
        SELECT g._g,
               g.as_of_day + 1 - o.signup_dayf AS tenure_days,
               CASE WHEN o.convert_dayf < g.as_of_day + 1 THEN g.as_of_day + 1 - o.convert_dayf END AS paying_days,
               coalesce(us.users, 0) AS users
        FROM _jl_grid g
        JOIN ({scope.customers_sql()}) c ON c.customer_id = g.customer_id
        JOIN _jl_out o ON o.customer_id = g.customer_id
        LEFT JOIN us ON us._g = g._g"""
    out = store.query(sql, _jl_grid=grid, _jl_out=out_frame)
    people = store.query(f"SELECT customer_id, segment, plan FROM ({scope.customers_sql()}) c")
    add("segment", "customer", "customer segment (as exported)", "category")
    add("plan", "customer", "plan (as exported: the current or last plan)", "category")
    add("tenure_days", "customer", "days from signup to the as-of day")
    add("paying_days", "customer", "days from conversion to the as-of day (NaN if not converted)")
    add("users", "customer", "users of the account created by the as-of day")
    g = out["_g"].to_numpy(dtype=np.intp)
    # each result row's customer: its position among the customers read (every row's customer is among them)
    at = pd.Index(people["customer_id"].astype(str).to_numpy()).get_indexer(pd.Index(grid["customer_id"].to_numpy()[g]))
    res = pd.DataFrame({"_g": out["_g"]})
    for c in ("segment", "plan"):  # one text object per category, not one per snapshot
        values = shared_strings(people[c].astype(object).where(people[c].notna(), None)).to_numpy()
        res[c] = pd.api.extensions.take(values, at, allow_fill=True)
    res["tenure_days"] = out["tenure_days"].astype("float64")
    res["paying_days"] = out["paying_days"].astype("float64")
    res["users"] = out["users"].astype("int64")
    return res


def _activity_family(
    store: Store, grid: pd.DataFrame, scope: Scope, wins: tuple[int, ...], activity_sources: Sequence[str],
    exclude_sources: Sequence[str], add: Any,
) -> pd.DataFrame:
    cats = source_categories(store)
    act = sources_of(store, activity_sources)
    excluded = set(sources_of(store, exclude_sources))
    kinds = sorted({c for s, c in cats.items() if s not in excluded})
    kind_sources = {k: sorted(s for s, c in cats.items() if c == k and s not in excluded) for k in kinds}
    if not any(set(v) == set(act) & set(cats) for v in kind_sources.values()):
        kinds.append("activity")  # the activity sources are not one kind: their own recency
        kind_sources["activity"] = act
    cols = ["n_act"] + [f"k_{feature_slug(k)}" for k in kinds]
    sums = [f"sum(CASE WHEN e.source IN ({_in_list(act)}) THEN 1 ELSE 0 END) AS n_act"]
    sums += [
        f"sum(CASE WHEN e.source IN ({_in_list(kind_sources[k])}) THEN 1 ELSE 0 END) AS k_{feature_slug(k)}" for k in kinds
    ]
    daily = f"""
        SELECT e.customer_id, {_day_sql("e.timestamp")} AS day, {", ".join(sums)}
        FROM events e JOIN (SELECT DISTINCT customer_id FROM _jl_grid) g ON e.customer_id = g.customer_id
        WHERE e.timestamp <= {_ts(scope)}
        GROUP BY e.customer_id, {_day_sql("e.timestamp")}"""
    selects = []
    active = "CASE WHEN n_act > 0 THEN 1 ELSE 0 END"
    for w in wins:
        selects.append(f"{_sum_over('n_act', w - 1)} AS activity_{w}d")
        selects.append(f"{_sum_over(active, w - 1)} AS active_days_{w}d")
    for k in range(SLOPE_WEEKS):
        selects.append(f"{_sum_over('n_act', 7 * k + 6, 7 * k)} AS wk{k}")
    for w in DROP_WINDOWS:
        selects.append(f"{_sum_over(active, w - 1)} AS drop_active_{w}")
    selects.append(f"{_sum_over('n_act', BASELINE_FROM - 1, BASELINE_TO)} AS base_events")
    selects.append(f"{_sum_over(active, BASELINE_FROM - 1, BASELINE_TO)} AS base_active")
    for kind in kinds:
        slug = f"k_{feature_slug(kind)}"
        selects.append(f"{_over(f'max(CASE WHEN {slug} > 0 THEN day END)', None)} AS last_{feature_slug(kind)}")
    signups = _signups(store, scope)

    def derive(out: pd.DataFrame) -> pd.DataFrame:  # row by row from the statement's values: the same in blocks
        # baseline: the days of d-119 .. d-30 on or after the signup day
        signup = out["as_of_day"] + 1 - (out["as_of_day"] + 1 - out["customer_id"].map(signups).astype(float))
        lo = np.maximum(out["as_of_day"] - (BASELINE_FROM - 1), np.floor(signup))
        base_days = np.clip(out["as_of_day"] - BASELINE_TO - lo + 1, 0, BASELINE_FROM - BASELINE_TO)
        res = pd.DataFrame({"customer_id": out["customer_id"], "as_of_day": out["as_of_day"]})
        for w in wins:
            res[f"activity_{w}d"] = out[f"activity_{w}d"].fillna(0).astype("int64")
            res[f"active_days_{w}d"] = out[f"active_days_{w}d"].fillna(0).astype("int64")
        be = out["base_events"].fillna(0).to_numpy(dtype=float)
        ba = out["base_active"].fillna(0).to_numpy(dtype=float)
        bd = base_days.to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_day = np.where(bd > 0, be / bd, np.nan)
            res["baseline_days"] = bd
            res["baseline_per_day"] = per_day
            res["baseline_active_share"] = np.where(bd > 0, ba / bd, np.nan)
            ok = (bd >= MIN_BASELINE_DAYS) & (per_day > 0)
            for w in (14, 30):
                res[f"activity_ratio_{w}d"] = np.where(ok, res[f"activity_{w}d"].to_numpy(dtype=float) / w / per_day, np.nan)
            weeks = np.column_stack([out[f"wk{k}"].fillna(0).to_numpy(dtype=float) for k in range(SLOPE_WEEKS)])[:, ::-1]
            x = np.arange(SLOPE_WEEKS, dtype=float) - (SLOPE_WEEKS - 1) / 2.0  # oldest week first, centred
            slope = (weeks * x).sum(axis=1) / (x**2).sum()
            mean = weeks.mean(axis=1)
            res["activity_slope_8w"] = np.where(mean > 0, slope / mean, np.nan)
            res["usual_gap_days"] = np.where(ba > 0, bd / ba, np.nan)
            for w in DROP_WINDOWS:
                recent = out[f"drop_active_{w}"].fillna(0).to_numpy(dtype=float)
                ratio, score = active_day_drop(recent, w, ba, bd)
                res[f"active_share_ratio_{w}d"] = np.where(bd >= MIN_BASELINE_DAYS, ratio, np.nan)
                res[f"activity_drop_score_{w}d"] = np.where(bd >= MIN_BASELINE_DAYS, score, np.nan)
        for kind in kinds:
            last = out[f"last_{feature_slug(kind)}"].astype("float64")
            res[f"days_since_{feature_slug(kind)}"] = out["as_of_day"] - last
        return res

    res = _timeline_on_grid(store, grid, daily, cols, selects, derive=derive)
    for w in wins:
        add(f"activity_{w}d", "activity", f"activity events in the last {w} days")
        add(f"active_days_{w}d", "activity", f"days with activity in the last {w} days")
    add("baseline_days", "activity", f"days of the customer's own baseline (days {BASELINE_FROM}..{BASELINE_TO + 1} before, after signup)")
    add("baseline_per_day", "activity", "activity events per baseline day")
    add("baseline_active_share", "activity", "share of baseline days with activity")
    add("activity_ratio_14d", "activity", "activity per day in the last 14 days over the customer's baseline per day")
    add("activity_ratio_30d", "activity", "activity per day in the last 30 days over the customer's baseline per day")
    add("activity_slope_8w", "activity", "slope of weekly activity over 8 weeks, relative to its mean")
    add("usual_gap_days", "activity", "baseline days per active baseline day (usual days between active days)")
    for w in DROP_WINDOWS:
        add(f"active_share_ratio_{w}d", "activity", f"share of active days in the last {w} days over the baseline's share")
        add(f"activity_drop_score_{w}d", "activity",
            f"-log10 of the one-sided exact p-value that the last {w} days hold so few active days, given the baseline")
    for kind in kinds:
        add(f"days_since_{feature_slug(kind)}", "recency", f"whole days since the last {kind} event (NaN if none)")
    return res


def _ts(scope: Scope) -> str:
    return sql_timestamp(scope.as_of)


def _signups(store: Store, scope: Scope) -> pd.Series:
    """Return the signup time (fractional day number) of each customer of *scope*, by customer id."""
    signups = store.query(f"SELECT customer_id, {_dayf_sql('signup_at')} AS s FROM ({scope.customers_sql()})")
    return signups.set_index("customer_id")["s"]


def _ticket_family(
    store: Store, grid: pd.DataFrame, scope: Scope, wins: tuple[int, ...], scores: pd.DataFrame | None, add: Any
) -> pd.DataFrame:
    frames: dict[str, pd.DataFrame] = {}
    if scores is not None:
        sc = scores[["ticket_id", "compound", "polarity"]].drop_duplicates("ticket_id").copy()
        sc["ticket_id"] = sc["ticket_id"].astype(str)
        sc["negative"] = (sc["polarity"] == "negative").astype("int64")
        sc["compound"] = sc["compound"].astype("float64")
        frames["_jl_scores"] = sc[["ticket_id", "compound", "negative"]]
        neg, comp, scored = "coalesce(s.negative, 0)", "coalesce(s.compound, 0)", "CASE WHEN s.compound IS NULL THEN 0 ELSE 1 END"
        join = "LEFT JOIN _jl_scores s ON s.ticket_id = t.ticket_id"
    else:
        neg, comp, scored, join = "0", "0", "0", ""
    asof = _ts(scope)
    high = "CASE WHEN lower(t.priority) IN ('high', 'urgent') THEN 1 ELSE 0 END"
    created = f"""
        SELECT t.customer_id, {_day_sql("t.created_at")} AS day, 1 AS n_new, {high} AS n_high, {neg} AS n_neg,
               {comp} AS comp_sum, {scored} AS n_scored, 0 AS n_solved, 0.0 AS sat_sum, 0 AS sat_n
        FROM tickets t JOIN (SELECT DISTINCT customer_id FROM _jl_grid) g ON t.customer_id = g.customer_id {join}
        WHERE t.created_at <= {asof}"""
    solved = f"""
        SELECT t.customer_id, {_day_sql("t.solved_at")} AS day, 0 AS n_new, 0 AS n_high, 0 AS n_neg, 0 AS comp_sum,
               0 AS n_scored, 1 AS n_solved, coalesce(t.satisfaction, 0.0) AS sat_sum,
               CASE WHEN t.satisfaction IS NULL THEN 0 ELSE 1 END AS sat_n
        FROM tickets t JOIN (SELECT DISTINCT customer_id FROM _jl_grid) g ON t.customer_id = g.customer_id
        WHERE t.solved_at IS NOT NULL AND t.solved_at <= {asof} AND t.solved_at >= t.created_at"""
    cols = ["n_new", "n_high", "n_neg", "comp_sum", "n_scored", "n_solved", "sat_sum", "sat_n"]
    daily = f"SELECT customer_id, day, {', '.join(f'sum({c}) AS {c}' for c in cols)} FROM ({created} UNION ALL {solved}) x GROUP BY customer_id, day"
    selects = [f"{_sum_over('n_new', w - 1)} AS tickets_{w}d" for w in wins]
    selects += [f"{_sum_over('n_neg', w - 1)} AS neg_{w}d" for w in wins]
    selects += [
        f"{_sum_over('n_high', 29)} AS high_30d",
        f"{_over('sum(comp_sum)', 29)} AS comp_30d",
        f"{_sum_over('n_scored', 29)} AS scored_30d",
        f"{_sum_over('n_new - n_solved', None)} AS open_tickets",
        f"{_over('max(CASE WHEN n_new > 0 THEN day END)', None)} AS last_ticket",
        f"{_over('sum(sat_sum)', 89)} AS sat_sum_90d",
        f"{_sum_over('sat_n', 89)} AS sat_n_90d",
    ]
    # the sums of floats (compound, satisfaction) in one statement over the whole grid (see _timeline_on_grid); the
    # counts in blocks of customers
    floats = ("comp_30d", "sat_sum_90d")
    out = _timeline_on_grid(store, grid, daily, cols, [s for s in selects if s.rsplit(" AS ", 1)[1] not in floats], frames)
    sums = _timeline_on_grid(store, grid, daily, cols, [s for s in selects if s.rsplit(" AS ", 1)[1] in floats], frames,
                             in_blocks=False)
    for c in floats:
        out[c] = sums[c]
    del sums
    res = pd.DataFrame({"customer_id": out["customer_id"], "as_of_day": out["as_of_day"]})
    for w in wins:
        res[f"tickets_{w}d"] = out[f"tickets_{w}d"].fillna(0).astype("int64")
        add(f"tickets_{w}d", "tickets", f"support tickets created in the last {w} days")
    res["tickets_high_priority_30d"] = out["high_30d"].fillna(0).astype("int64")
    add("tickets_high_priority_30d", "tickets", "high or urgent tickets created in the last 30 days")
    res["open_tickets"] = out["open_tickets"].fillna(0).astype("int64")
    add("open_tickets", "tickets", "tickets created and not solved by the as-of day")
    res["days_since_ticket"] = out["as_of_day"] - out["last_ticket"].astype("float64")
    add("days_since_ticket", "tickets", "whole days since the last ticket was created (NaN if none)")
    sat_n = out["sat_n_90d"].fillna(0).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        res["satisfaction_90d"] = np.where(sat_n > 0, out["sat_sum_90d"].fillna(0).to_numpy(dtype=float) / sat_n, np.nan)
    add("satisfaction_90d", "tickets", "mean satisfaction (0-1) of tickets solved in the last 90 days (NaN if none rated)")
    if scores is not None:
        for w in wins:
            res[f"negative_tickets_{w}d"] = out[f"neg_{w}d"].fillna(0).astype("int64")
            add(f"negative_tickets_{w}d", "tickets", f"negative-sentiment tickets created in the last {w} days")
        n = out["scored_30d"].fillna(0).to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            res["ticket_compound_30d"] = np.where(n > 0, out["comp_30d"].fillna(0).to_numpy(dtype=float) / n, np.nan)
        add("ticket_compound_30d", "tickets", "mean sentiment (compound, -1..1) of tickets created in the last 30 days")
    return res


def _email_family(store: Store, grid: pd.DataFrame, scope: Scope, add: Any) -> pd.DataFrame:
    statuses = ("delivered", "opened", "clicked", "unsubscribed")
    cols = [f"n_{s}" for s in statuses]
    sums = ", ".join(f"sum(CASE WHEN m.status = {sql_quote(s)} THEN 1 ELSE 0 END) AS n_{s}" for s in statuses)
    daily = f"""
        SELECT m.customer_id, {_day_sql("m.timestamp")} AS day, {sums}
        FROM messages m JOIN (SELECT DISTINCT customer_id FROM _jl_grid) g ON m.customer_id = g.customer_id
        WHERE m.timestamp <= {_ts(scope)}
        GROUP BY m.customer_id, {_day_sql("m.timestamp")}"""
    selects = [
        f"{_sum_over('n_delivered', 29)} AS delivered_30d",
        f"{_sum_over('n_opened', 29)} AS opened_30d",
        f"{_sum_over('n_clicked', 29)} AS clicked_30d",
        f"{_sum_over('n_delivered', 59)} AS delivered_60d",
        f"{_sum_over('n_opened', 59)} AS opened_60d",
        f"{_over('max(CASE WHEN n_opened > 0 THEN day END)', None)} AS last_open",
        f"{_sum_over('n_unsubscribed', None)} AS unsub",
    ]
    out = _timeline_on_grid(store, grid, daily, cols, selects)
    res = pd.DataFrame({"customer_id": out["customer_id"], "as_of_day": out["as_of_day"]})
    for s in ("delivered", "opened", "clicked"):
        res[f"emails_{s}_30d"] = out[f"{s}_30d"].fillna(0).astype("int64")
        add(f"emails_{s}_30d", "email", f"e-mails {s} in the last 30 days")
    d60 = out["delivered_60d"].fillna(0).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # an open can follow a delivery before the window: capped at 1
        res["email_open_rate_60d"] = np.where(d60 > 0, np.minimum(out["opened_60d"].fillna(0).to_numpy(dtype=float) / d60, 1.0), np.nan)
    add("email_open_rate_60d", "email", "e-mails opened / delivered in the last 60 days, at most 1 (NaN if none delivered)")
    res["days_since_email_open"] = out["as_of_day"] - out["last_open"].astype("float64")
    add("days_since_email_open", "email", "whole days since an e-mail was last opened (NaN if never)")
    res["unsubscribed"] = (out["unsub"].fillna(0) > 0).astype("int64")
    add("unsubscribed", "email", "1 if the customer unsubscribed by the as-of day")
    return res


def _stage_family(
    store: Store, grid: pd.DataFrame, definition: JourneyDefinition, scope: Scope, cache: ResultCache | None, add: Any
) -> pd.DataFrame:
    # the whole scope, unsampled: peers' times in a stage come from every customer
    ms = stage_milestones(store, definition, scope.replace(sample_n=0, random_state=0), cache=cache)
    for c in ("entered_at", "churned_at", "signup_at", "converted_at", "met_at"):
        ms[c] = pd.to_datetime(ms[c], utc=True)
    if "ended_at" in ms.columns:
        ms["ended_at"] = pd.to_datetime(ms["ended_at"], utc=True)
    entered = ms[ms["entered_at"].notna()]
    frame_ms = pd.DataFrame(
        {
            "customer_id": entered["customer_id"].astype(str).to_numpy(),
            "stage_order": entered["stage_order"].astype("int64").to_numpy(),
            "entered_dayf": ((entered["entered_at"] - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=float),
        }
    )
    iv = add_stage_exits(ms, definition, scope.as_of)
    done = iv[iv["status"] == "progressed"]
    frame_iv = pd.DataFrame(
        {
            "stage_order": done["stage_order"].astype("int64").to_numpy(),
            "exited_dayf": ((pd.to_datetime(done["exited_at"], utc=True) - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=float),
            "days": done["days_in_stage"].to_numpy(dtype=float),
        }
    )
    del ms, entered, iv, done  # the statement reads the two small frames only
    sql = """
        WITH s AS (
            SELECT g._g, g.customer_id, g.as_of_day, m.stage_order, m.entered_dayf,
                   count(*) OVER (PARTITION BY g.customer_id, g.as_of_day) AS stages_reached,
                   row_number() OVER (PARTITION BY g.customer_id, g.as_of_day ORDER BY m.entered_dayf DESC, m.stage_order DESC) AS rn
            FROM _jl_grid g JOIN _jl_ms m ON m.customer_id = g.customer_id AND m.entered_dayf < g.as_of_day + 1),
        cur AS (
            SELECT _g, as_of_day, stage_order, stages_reached, as_of_day + 1 - entered_dayf AS days_in_stage
            FROM s WHERE rn = 1),
        peers AS (
            SELECT _g, as_of_day, stage_order, stages_reached, days_in_stage,
                   median(days_in_stage) OVER (PARTITION BY as_of_day, stage_order) AS peer_median
            FROM cur),
        moved AS (
            SELECT d.as_of_day, i.stage_order, median(i.days) AS moved_median
            FROM (SELECT DISTINCT as_of_day FROM _jl_grid) d JOIN _jl_iv i ON i.exited_dayf < d.as_of_day + 1
            GROUP BY d.as_of_day, i.stage_order)
        SELECT p._g, p.as_of_day, p.stage_order, p.stages_reached, p.days_in_stage, p.peer_median, v.moved_median
        FROM peers p LEFT JOIN moved v ON v.as_of_day = p.as_of_day AND v.stage_order = p.stage_order"""
    raw = store.query(sql, _jl_grid=grid, _jl_ms=frame_ms, _jl_iv=frame_iv)
    out = _on_grid(grid, raw, day="as_of_day")
    del raw
    names = np.asarray(definition.stage_names, dtype=object)
    order = out["stage_order"]
    res = pd.DataFrame({"customer_id": out["customer_id"], "as_of_day": out["as_of_day"]})
    res["stage"] = [names[int(k)] if pd.notna(k) else None for k in order]
    res["stages_reached"] = out["stages_reached"].fillna(0).astype("int64")
    res["days_in_stage"] = out["days_in_stage"].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        pm = out["peer_median"].astype("float64")
        res["days_in_stage_vs_peers"] = np.where(pm > 0, res["days_in_stage"] / pm, np.nan)
        mm = out["moved_median"].astype("float64")
        res["stage_overdue"] = np.where(mm.notna() & res["days_in_stage"].notna(), (res["days_in_stage"] > mm).astype(float), np.nan)
    add("stage", "stages", "the journey stage entered last by the as-of day", "category")
    add("stages_reached", "stages", "journey stages entered by the as-of day (milestones met)")
    add("days_in_stage", "stages", "days since entering the current stage")
    add("days_in_stage_vs_peers", "stages", "days in stage over the median of customers in the same stage on the same day")
    add("stage_overdue", "stages", "1 if in the stage longer than the median time peers took to move on from it")
    return res
