import json
import warnings

import numpy as np
import pytest
from bad_input import raises_bad_input

from hyperdas_tl.stats import (
    BootstrapConfig,
    Interval,
    bootstrap_mean,
    decide,
    decide_over_seeds,
    decision_text,
    paired_difference,
    seed_spread,
)

PLAIN = BootstrapConfig(cluster=False)


def test_textbook_binomial_interval():
    # 60 of 100 correct: the normal approximation is 0.6 ± 1.96 sqrt(0.24 / 100)
    verdicts = np.array([1] * 60 + [0] * 40)
    half = 1.96 * np.sqrt(0.6 * 0.4 / 100)
    for method in ("percentile", "BCa", "basic"):
        interval = bootstrap_mean(verdicts, config=BootstrapConfig(cluster=False, method=method))
        assert interval.mean == 0.6 and interval.n == 100
        assert interval.lo == pytest.approx(0.6 - half, abs=0.02), method
        assert interval.hi == pytest.approx(0.6 + half, abs=0.02), method


def test_a_method_minus_itself_is_exactly_zero_with_zero_width():
    rng = np.random.default_rng(0)
    verdicts = rng.integers(0, 2, 200)
    clusters = rng.integers(0, 30, 200)
    cells = rng.choice(["cause", "isolate"], 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for config in (BootstrapConfig(), PLAIN, BootstrapConfig(method="BCa")):
            difference = paired_difference(
                verdicts, verdicts, clusters=clusters, cells=cells, config=config
            )
            assert (difference.mean, difference.lo, difference.hi) == (0.0, 0.0, 0.0)
            assert difference.width == 0.0 and decide(difference) == "no difference"


def test_all_equal_values_give_a_zero_width_interval_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scipy DegenerateDataWarning, no NaN
        for value in (0.0, 1.0):
            interval = bootstrap_mean(np.full(50, value), config=BootstrapConfig(method="BCa"))
            assert (interval.mean, interval.lo, interval.hi) == (value, value, value)
        # constant within each cell (all cause right, all isolate wrong): the macro mean is fixed
        cells = ["cause"] * 10 + ["isolate"] * 10
        interval = bootstrap_mean([1.0] * 10 + [0.0] * 10, cells=cells)
        assert (interval.mean, interval.lo, interval.hi) == (0.5, 0.5, 0.5)
        # one cluster: nothing to resample
        one = bootstrap_mean([1, 0, 1], clusters=["Paris"] * 3)
        assert one.lo == one.hi == one.mean and one.n_clusters == 1


def test_bad_input_is_a_clear_error():
    with raises_bad_input("empty"):
        bootstrap_mean([])
    with raises_bad_input("empty"):
        paired_difference([], [])
    with raises_bad_input("same length"):
        paired_difference([1, 0], [1])
    with raises_bad_input("clusters has 1 entries for 2 values"):
        bootstrap_mean([1, 0], clusters=["a"])
    with raises_bad_input("non-finite"):
        bootstrap_mean([1.0, float("nan")])
    with raises_bad_input("n_resamples"):
        BootstrapConfig(n_resamples=10)
    with raises_bad_input("method"):
        BootstrapConfig(method="jackknife")


def test_cluster_bootstrap_is_wider_when_examples_of_an_entity_agree():
    # 20 entities x 5 examples, all examples of an entity share their verdict: there are 20
    # independent observations, not 100
    rng = np.random.default_rng(1)
    per_entity = rng.integers(0, 2, 20)
    verdicts = np.repeat(per_entity, 5)
    entities = np.repeat([f"e{i}" for i in range(20)], 5)
    cluster = bootstrap_mean(verdicts, clusters=entities)
    plain = bootstrap_mean(verdicts, clusters=entities, config=PLAIN)
    assert cluster.mean == plain.mean
    assert cluster.n_clusters == 20 and plain.n_clusters == 100
    assert cluster.width == pytest.approx(np.sqrt(5) * plain.width, rel=0.3)
    # and it is the plain interval of the 20 entity means
    entity_level = bootstrap_mean(per_entity, config=PLAIN)
    assert cluster.width == pytest.approx(entity_level.width, abs=0.06)


def test_paired_interval_uses_the_pairing():
    # B is A with 10 of 200 verdicts flipped from right to wrong: the unpaired spread of either
    # method is ~±0.07, the paired difference is tight around 0.05 and excludes 0
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2, 200).astype(float)
    a[:10] = 1.0
    b = a.copy()
    b[:10] = 0.0
    difference = paired_difference(a, b, config=PLAIN)
    assert difference.mean == pytest.approx(0.05)
    assert 0 < difference.lo < 0.05 < difference.hi < 0.09
    assert decide(difference) == "A > B"
    assert decide(paired_difference(b, a, config=PLAIN)) == "A < B"
    assert decision_text(difference, "HyperDAS (soft)", "MDAS") == "HyperDAS (soft) > MDAS"


def test_a_seed_pointing_the_other_way_makes_the_difference_inconsistent():
    above, below = Interval(0.05, 0.02, 0.08, n=100), Interval(-0.06, -0.09, -0.03, n=100)
    around = Interval(0.01, -0.02, 0.04, n=100)
    assert decide_over_seeds(above) == decide(above) == "A > B"
    assert decide_over_seeds(above, [above, around]) == "A > B"  # a null seed does not veto
    assert decide_over_seeds(above, [above, below]) == "no consistent difference"
    assert decide_over_seeds(below, [above]) == "no consistent difference"
    assert decide_over_seeds(around, [above, below]) == "no difference"
    assert decision_text(above, "HyperDAS (soft)", "MDAS", [below]) == "no consistent difference"


def test_disentangle_difference_is_the_mean_of_the_kind_differences():
    cells = ["cause"] * 40 + ["isolate"] * 10
    a = np.array([1.0] * 30 + [0.0] * 10 + [1.0] * 10)  # cause 0.75, isolate 1.0
    b = np.array([1.0] * 10 + [0.0] * 30 + [1.0] * 5 + [0.0] * 5)  # cause 0.25, isolate 0.5
    difference = paired_difference(a, b, cells=cells, config=PLAIN)
    assert difference.mean == pytest.approx(((0.75 - 0.25) + (1.0 - 0.5)) / 2)
    macro = bootstrap_mean(a, cells=cells, config=PLAIN)
    assert macro.mean == pytest.approx((0.75 + 1.0) / 2)  # not the pooled 0.8
    assert macro.lo < macro.mean < macro.hi


def test_seeded_and_reproducible():
    rng = np.random.default_rng(3)
    values, clusters = rng.integers(0, 2, 120), rng.integers(0, 25, 120)
    first = bootstrap_mean(values, clusters=clusters, config=BootstrapConfig(seed=7))
    assert first == bootstrap_mean(values, clusters=clusters, config=BootstrapConfig(seed=7))
    other = bootstrap_mean(values, clusters=clusters, config=BootstrapConfig(seed=8))
    assert other.mean == first.mean and (other.lo, other.hi) != (first.lo, first.hi)


def test_interval_and_config_round_trip_and_seed_spread():
    interval = Interval(0.5, 0.4, 0.6, 100, 30)
    data = json.loads(json.dumps(interval.to_dict()))
    assert {"mean", "lo", "hi", "n"} <= set(data)
    assert Interval.from_dict(data) == interval
    assert interval.excludes_zero() and not Interval(0.0, -0.1, 0.1, 5).excludes_zero()
    config = BootstrapConfig(n_resamples=500, method="BCa", cluster=False, seed=4)
    assert BootstrapConfig.from_dict(config.to_dict()) == config
    spread = seed_spread([0.5, 0.7])
    assert spread.mean == pytest.approx(0.6) and spread.sd == pytest.approx(np.sqrt(0.02))
    assert seed_spread([0.4]).sd is None
