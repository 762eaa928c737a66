"""The active-day drop test against a customer's own baseline: it flags a busy account's early drop, not a quiet account's gaps."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _builders import T0, day, event_rows, journey_definition, memory_store
from scipy import stats

from journeylib.customers.snapshots import DROP_WINDOWS, active_day_drop, build_snapshots
from journeylib.exceptions import StatisticalWarning


def test_drop_score_is_fishers_one_sided_exact_test() -> None:
    # 2 active days of the last 14 against 45 of a 90-day baseline: table [[2, 12], [45, 45]], alternative "less"
    ratio, score = active_day_drop([2, 0, 14], 14, [45, 2, 45], [90, 90, 90])
    p = stats.fisher_exact([[2, 12], [45, 45]], alternative="less").pvalue
    assert score[0] == pytest.approx(-np.log10(p))
    assert ratio[0] == pytest.approx((2 / 14) / (45 / 90))
    # a quiet account (2 active days in 90) idle for 14 days is no evidence: P(0 of 14) = C(90,2)/C(104,2)
    assert score[1] == pytest.approx(-np.log10(90 * 89 / (104 * 103)))
    assert score[1] < 0.2
    assert score[2] == 0.0  # more active than usual: no drop
    ratio, score = active_day_drop([3], 14, [0], [0])  # no baseline
    assert np.isnan(ratio[0])
    assert np.isnan(score[0])


def test_snapshots_see_a_busy_accounts_early_drop_and_not_a_quiet_accounts_gaps() -> None:
    """Busy: active 5 days a week for 150 days, then 1 day a week. Quiet: one day in 15, then idle from day 136."""
    last = 169
    busy = [("busy", d + 0.5, "login") for d in range(1, 150) if d % 7 < 5]
    busy += [("busy", d + 0.5, "login") for d in range(150, last) if d % 7 == 0]
    quiet = [("quiet", d + 0.5, "login") for d in range(1, 150, 15)]
    customers = [
        {"customer_id": c, "signup_at": T0, "converted_at": day(0.5), "churned_at": pd.NaT, "segment": "SMB", "plan": "pro"}
        for c in ("busy", "quiet")
    ]
    definition = journey_definition({"Signed up": "signup"}, outcomes=["churn", "conversion"])
    store = memory_store(customers=customers, events=event_rows(busy + quiet))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            snap = build_snapshots(store, definition=definition, horizon_days=30, as_of_dates=[day(last - 0.4)])
    finally:
        store.close()
    rows = snap.data.set_index("customer_id")
    for w in DROP_WINDOWS:
        assert f"activity_drop_score_{w}d" in snap.feature_columns
        assert f"active_share_ratio_{w}d" in snap.feature_columns
    # busy: 5 active days in days 148..168 (148, 149, 154, 161, 168) against 5 of 7 in its baseline: p far below 1e-4
    base = sum(1 for d in range(last - 1 - 119, last - 1 - 29) if d % 7 < 5)  # days d-119 .. d-30 (d = 168)
    assert rows.loc["busy", "baseline_active_share"] == pytest.approx(base / 90)
    assert rows.loc["busy", "active_share_ratio_21d"] == pytest.approx((5 / 21) / (base / 90))
    assert rows.loc["busy", "activity_drop_score_21d"] == pytest.approx(-np.log10(stats.hypergeom.cdf(5, 111, 5 + base, 21)))
    assert rows.loc["busy", "activity_drop_score_21d"] > 4
    # quiet: 0 of 21 against 6 of its 90 baseline days: the drop is within its own noise
    assert rows.loc["quiet", "activity_drop_score_21d"] < 1
    assert rows.loc["quiet", "activity_drop_score_14d"] < rows.loc["busy", "activity_drop_score_14d"]
