"""Behavioural segments: the estimator contract, k selection, naming, stability, recovery of the planted archetypes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT
from scipy import stats
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import build_features, customer_outcomes_data
from journeylib.customers.segments import (
    BehaviouralSegmenter,
    early_behaviour_matrix,
    group_comparison_data,
    power_users_vs_churners_data,
    segment_assignments_data,
    segment_outcomes_data,
)
from journeylib.datasets import load_archetypes
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store

#: The bar for recovering the latent archetypes (power_user / in_between / struggler) from the first
#: 14 days of behaviour. A supervised classifier on the same features reaches ARI ~0.66 on this world
#: (the archetypes overlap: "in between" has no behaviour of its own); k-means with k chosen by
#: silhouette reaches ~0.44.
ARI_BAR = 0.35


@parametrize_with_checks([BehaviouralSegmenter(n_bootstrap=0)])
def test_sklearn_estimator_contract(estimator, check) -> None:
    check(estimator)


def blobs(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups: heavy users (many tasks and features), light users, and ticket raisers."""
    rng = np.random.default_rng(seed)
    n = 60
    truth = np.repeat([0, 1, 2], n)
    tasks = np.concatenate([rng.poisson(30, n), rng.poisson(3, n), rng.poisson(1, n)])
    features = np.concatenate([rng.poisson(40, n), rng.poisson(5, n), rng.poisson(2, n)])
    tickets = np.concatenate([rng.poisson(0.2, n), rng.poisson(0.3, n), rng.poisson(6, n)])
    X = pd.DataFrame({"n_task_created_14d": tasks, "n_feature_used_14d": features, "tickets_14d": tickets},
                     index=pd.Index([f"c{i:03d}" for i in range(3 * n)], name="customer_id"))
    return X, truth


def test_k_is_chosen_by_silhouette_with_every_alternative_shown() -> None:
    X, truth = blobs()
    seg = BehaviouralSegmenter(n_bootstrap=5).fit(X)
    assert seg.n_segments_ == 3
    sel = seg.selection_
    assert sel["k"].tolist() == [2, 3, 4, 5, 6]
    assert sel["criterion"].eq("silhouette").all()
    assert sel.loc[sel["chosen"], "k"].tolist() == [int(sel.loc[sel["score"].idxmax(), "k"])]
    assert adjusted_rand_score(truth, seg.labels_) > 0.95
    assert seg.stability_summary()["ari_mean"] > 0.95
    assert len(seg.stability_) == 5
    assert np.array_equal(seg.predict(X), seg.labels_)
    assert np.bincount(seg.labels_).tolist() == sorted(np.bincount(seg.labels_).tolist(), reverse=True)


def test_bic_and_gaussian_mixture() -> None:
    X, truth = blobs(1)
    seg = BehaviouralSegmenter(method="gmm", criterion="bic", n_bootstrap=0, k_range=(1, 4)).fit(X)
    sel = seg.selection_
    assert sel.loc[sel["chosen"], "k"].item() == int(sel.loc[sel["score"].idxmin(), "k"])  # lower BIC is better
    assert seg.n_segments_ == 3
    assert adjusted_rand_score(truth, seg.labels_) > 0.8
    fixed = BehaviouralSegmenter(n_segments=2, n_bootstrap=0).fit(X)
    assert fixed.n_segments_ == 2
    assert len(fixed.selection_) == 1


def test_segments_are_named_from_what_distinguishes_them() -> None:
    X, truth = blobs()
    seg = BehaviouralSegmenter(n_bootstrap=0).fit(X)
    by_truth = {t: seg.names_[int(np.bincount(seg.labels_[truth == t]).argmax())] for t in range(3)}
    assert by_truth[0].startswith("power users: many ")
    assert "tasks created" in by_truth[0] or "feature uses" in by_truth[0]
    assert by_truth[2].startswith(("strugglers", "in-between users"))
    assert "many support tickets" in by_truth[2]
    prof = seg.profiles_
    assert set(prof.columns) == {"segment", "name", "feature", "label", "mean", "median", "z", "share"}
    heavy = prof[(prof["name"] == by_truth[0]) & (prof["feature"] == "n_task_created_14d")].iloc[0]
    assert heavy["mean"] == pytest.approx(X["n_task_created_14d"].to_numpy()[seg.labels_ == heavy["segment"]].mean())
    assert heavy["z"] > 1
    assert seg.summary()["share"].sum() == pytest.approx(1.0)


def test_missing_values_and_errors() -> None:
    X, _ = blobs()
    X = X.astype(float)
    X.iloc[0, 0] = np.nan
    seg = BehaviouralSegmenter(n_bootstrap=0).fit(X)
    assert seg.medians_[0] == pytest.approx(np.nanmedian(X.iloc[:, 0]))
    with pytest.raises(NotFittedError):
        BehaviouralSegmenter().predict(X)
    with pytest.raises(ValueError, match="method must be 'kmeans' or 'gmm'"):
        BehaviouralSegmenter(method="dbscan").fit(X)
    with pytest.raises(ValueError, match="criterion must be 'gap', 'silhouette' or 'bic'"):
        BehaviouralSegmenter(criterion="elbow").fit(X)
    with pytest.raises(ValueError, match="k_range must be"):
        BehaviouralSegmenter(k_range=(4, 2)).fit(X)
    X.iloc[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        BehaviouralSegmenter(n_bootstrap=0).fit(X)


def test_group_comparison_by_hand_and_against_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(5, 2, 40), rng.normal(3, 1, 60)
    m = pd.DataFrame({"x": np.concatenate([a, b])}, index=[f"c{i}" for i in range(100)])
    out = group_comparison_data(m, group_a=[f"c{i}" for i in range(40)], group_b=[f"c{i}" for i in range(40, 100)],
                                name_a="A", name_b="B")
    row = out.iloc[0]
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((ci.low, ci.high))
    sp = np.sqrt((39 * a.var(ddof=1) + 59 * b.var(ddof=1)) / 98)
    assert row["hedges_g"] == pytest.approx((a.mean() - b.mean()) / sp * (1 - 3 / (4 * 100 - 9)))
    assert row["p_value"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)
    assert row["comparison"] == "A vs B"
    assert row["significant"]
    assert row["statement"].startswith(f"A averaged {a.mean():.3g} x vs {b.mean():.3g} for B ({a.mean() / b.mean():.1f} times as high; ")
    assert "a difference beyond chance at the false-discovery rate of 0.05" in row["statement"]


def test_group_comparison_thin_groups_warn_and_say_why() -> None:
    m = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 1, 1, 1]}, index=["a", "b", "c", "d"])
    with pytest.warns(StatisticalWarning, match="at least 10 each"):
        out = group_comparison_data(m, group_a=["a", "b"], group_b=["c", "d"])
    assert out["status"].eq("below_min_support").all()
    assert not out["significant"].any()
    m = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6], "y": [1.0] * 6}, index=list("abcdef"))
    out = group_comparison_data(m, group_a=["a", "b", "c"], group_b=["d", "e", "f", "a"], min_support=1)
    # "a" is in both groups: dropped from both; y is constant
    assert out.set_index("feature").loc["y", "status"] == "skipped_constant"
    assert out.set_index("feature").loc["x", "n_a"] == 2


@pytest.fixture(scope="module")
def planted_segments(planted_world: tuple[Path, Path]):
    world, db = planted_world
    definition = JourneyDefinition.from_yaml(ROOT / "parameters" / "journeys" / "saas.yaml")
    store = Store(db, read_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        feats = build_features(store, window_days=14)
    matrix = early_behaviour_matrix(feats)
    seg = BehaviouralSegmenter(n_bootstrap=10).fit(matrix)
    yield world, store, definition, matrix, seg
    store.close()


@pytest.mark.slow
def test_planted_archetypes_are_recovered(planted_segments) -> None:
    world, _, _, matrix, seg = planted_segments
    arch = load_archetypes(world).set_index("customer_id")["archetype"].loc[matrix.index].to_numpy()
    ari = adjusted_rand_score(arch, seg.labels_)
    assert ari >= ARI_BAR
    kinds = np.asarray(seg.kinds_)[seg.labels_]
    share = pd.crosstab(kinds, arch, normalize="index")
    assert share["power_user"].idxmax() == "power users"
    assert share["struggler"].idxmax() == "strugglers"
    assert share.loc["power users", "power_user"] > 0.6
    assert share.loc["strugglers", "struggler"] > 0.6
    assert any(n.startswith("power users: ") for n in seg.names_)
    assert any(n.startswith("strugglers: ") for n in seg.names_)
    assert seg.stability_summary()["ari_mean"] >= 0.8


@pytest.mark.slow
def test_planted_segment_outcomes_and_power_users_vs_churners(planted_segments) -> None:
    _, store, definition, matrix, seg = planted_segments
    assignments = segment_assignments_data(seg, matrix)
    assert list(assignments.columns) == ["customer_id", "segment", "cohort", "kind"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = segment_outcomes_data(store, definition=definition, assignments=assignments)
    conv = out[out["metric"] == "conversion_rate"].set_index("cohort")
    power = conv.loc[next(n for n in conv.index if n.startswith("power users"))]
    strug = conv.loc[next(n for n in conv.index if n.startswith("strugglers"))]
    assert power["ci_low"] > strug["ci_high"]
    assert power["significant"]
    assert out["customers"].groupby(out["cohort"]).first().sum() == len(matrix)
    outcomes = customer_outcomes_data(store, definition=definition)
    cmp_ = power_users_vs_churners_data(matrix, assignments, outcomes)
    assert cmp_["comparison"].iloc[0] == "power users vs churners"
    top = cmp_[cmp_["status"] == "ok"].iloc[0]
    assert top["hedges_g"] > 0.5
    assert top["g_ci_low"] > 0
    assert top["significant"]


@pytest.mark.notebooks
@pytest.mark.slow
def test_cohorts_and_segments_notebook_writes_every_table(demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm
    from papermill.iorw import read_yaml_file

    from journeylib.reports.artifacts import read_artifacts

    monkeypatch.setenv("REPORT_CHART_MODE", "static")
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    params = read_yaml_file(str(ROOT / "parameters" / "02_cohorts_and_segments" / "smoke.yaml"))
    params.update(db=str(demo_store), output_dir=str(tmp_path / "out"), by="channel")
    pm.execute_notebook(str(ROOT / "notebooks" / "02_cohorts_and_segments.ipynb"), str(tmp_path / "out.ipynb"),
                        parameters=params, kernel_name="python3", cwd=str(ROOT / "notebooks"), execution_timeout=120,
                        progress_bar=False)
    art = read_artifacts(tmp_path / "out")
    assert set(art.tables) == {
        "cohort_metrics", "cohort_pairs", "retention_curves", "feature_exclusions", "segment_selection", "segment_sizes",
        "segment_stability", "segment_profiles", "segment_assignments", "segment_outcomes", "power_users_vs_churners",
        "behaviour_columns",
    }
    assert art.summary["by"] == "channel"
    assert art.summary["activity_sources"]  # the sources counted as activity are named
    columns = art.tables["behaviour_columns"]
    assert {"column", "kind", "informative"} <= set(columns.columns)
    assert int(columns["informative"].sum()) >= 3
    assert art.summary["segments"] == len(art.tables["segment_sizes"])
    assert art.summary["customers_segmented"] == len(art.tables["segment_assignments"])
    assert set(art.tables["cohort_metrics"]["by"]) == {"channel"}
    assert 0 <= art.summary["stability"]["ari_mean"] <= 1


#: Four planted behaviour groups whose product events come from sources named web and mobile (no "product" source).
WEB_MOBILE_GROUPS = {  # event -> (source, mean count in the first 14 days)
    "builders": {"project_created": ("web", 6), "task_created": ("web", 25), "report_viewed": ("web", 4), "app_opened": ("mobile", 4)},
    "mobile": {"app_opened": ("mobile", 30), "notification_read": ("mobile", 18), "task_created": ("web", 3)},
    "collaborators": {"invite_sent": ("web", 5), "comment_added": ("web", 18), "task_created": ("web", 8), "app_opened": ("mobile", 8)},
    "dormant": {"app_opened": ("mobile", 1.5), "task_created": ("web", 1)},
}


def web_mobile_world(n_per: int = 50, seed: int = 0) -> tuple[Store, dict[str, str]]:
    """Customers of four behaviour groups (activity level varies per customer), plus e-mail and CRM events and tickets."""
    from _builders import day, memory_store

    rng = np.random.default_rng(seed)
    customers, events, tickets, truth = [], [], [], {}

    def add(cid: str, t: float, event: str, source: str) -> None:
        events.append({"event_id": f"x{len(events)}", "customer_id": cid, "timestamp": day(t), "event": event, "source": source})

    for group, spec in WEB_MOBILE_GROUPS.items():
        for i in range(n_per):
            cid = f"{group[:3]}{i:03d}"
            signup = float(rng.uniform(0, 20))
            customers.append({"customer_id": cid, "segment": "SMB", "signup_at": day(signup)})
            truth[cid] = group
            add(cid, signup, "trial_started", "crm")
            scale = rng.gamma(4, 1 / 4)
            for event, (source, mean) in spec.items():
                for t in rng.uniform(0, 14, rng.poisson(mean * scale)):
                    add(cid, signup + t, event, source)
            for t in rng.uniform(0, 14, rng.poisson(2)):
                add(cid, signup + t, "email_opened", "email")
            for t in rng.uniform(0, 14, rng.poisson(0.5)):
                tickets.append({"ticket_id": f"t{len(tickets)}", "customer_id": cid, "created_at": day(signup + t)})
    return memory_store(customers=customers, events=events, tickets=tickets), truth


def test_segments_find_behaviour_whatever_the_sources_are_called() -> None:
    from _builders import day
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    from journeylib.customers.segments import behaviour_matrix_data
    from journeylib.store.categories import activity_source_names

    store, truth = web_mobile_world()
    with store:
        assert activity_source_names(store) == ["mobile", "web"]
        bm = behaviour_matrix_data(store, window_days=14, as_of=day(60))
        # with no activity source (what the feature table's old default, the literal name "product", matched here)
        # the old matrix is thin; the default now takes the store's activity sources (every product-kind source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            old_features = build_features(store, window_days=14, as_of=day(60), activity_sources=())
            default_features = build_features(store, window_days=14, as_of=day(60))
        assert default_features.data["days_active_14d"].equals(bm.features.data["days_active_14d"])
    y = np.array([truth[c] for c in bm.data.index])
    assert bm.notes == []
    assert bm.customers == len(truth)
    assert 0 < bm.customers_without_activity < bm.customers / 2  # a few dormant customers did nothing: no note
    events = set(bm.columns["event"]) - {""}
    assert {"app_opened", "task_created", "comment_added", "notification_read"} <= events
    assert "email_opened" not in events
    assert "trial_started" not in events
    assert {"count", "share", "days_active"} <= set(bm.columns["kind"])
    seg = BehaviouralSegmenter(n_bootstrap=10).fit(bm.data)
    ari = adjusted_rand_score(y, seg.labels_)
    # the reference: plain k-means on standardised log counts of every event, with the true k
    counts = bm.features.data.set_index("customer_id")[[c for c in bm.data.columns if c.startswith("n_")]]
    reference = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(StandardScaler().fit_transform(np.log1p(counts)))
    ari_ref = adjusted_rand_score(y, reference)
    print(f"segmenter ARI {ari:.2f} (k = {seg.n_segments_}); plain k-means on log counts ARI {ari_ref:.2f}")
    assert ari >= 0.6
    assert ari_ref >= 0.6
    sel = seg.selection_
    assert {"silhouette", "bic", "gap", "gap_se", "stability", "stable"} <= set(sel.columns)
    assert sel.loc[sel["chosen"], "stable"].all()
    assert seg.notes_ == []
    # the old path warns loudly: fewer than three informative columns
    with pytest.warns(StatisticalWarning, match="flags none of its"):
        thin = early_behaviour_matrix(old_features)
    assert thin.shape[1] >= 3  # the fallback uses every event count
    with pytest.warns(StatisticalWarning, match=r"built on 1 informative column\(s\) \(tickets_14d\)"):
        BehaviouralSegmenter(n_bootstrap=0).fit(old_features.data.set_index("customer_id")[["tickets_14d"]])


def test_notes_when_most_customers_have_no_activity() -> None:
    X = pd.DataFrame({"a": [0] * 40 + list(range(1, 11)), "b": [0] * 40 + [3] * 10, "c": [0] * 45 + [1] * 5})
    with pytest.warns(StatisticalWarning, match=r"40 of 50 customers \(80%\) have zero in every column"):
        seg = BehaviouralSegmenter(n_bootstrap=3).fit(X)
    assert any("zero in every column" in n for n in seg.notes_)


def test_k_selection_by_gap_and_bic_among_stable_k() -> None:
    X, truth = blobs()
    gap = BehaviouralSegmenter(criterion="gap", n_bootstrap=5).fit(X)
    assert gap.n_segments_ == 3
    sel = gap.selection_
    assert (sel["score"] == sel["gap"]).all()
    assert sel.loc[sel["chosen"], "stability"].item() > 0.9
    assert adjusted_rand_score(truth, gap.labels_) > 0.95
