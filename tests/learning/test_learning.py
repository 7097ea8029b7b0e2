"""Strategies, prequential evaluation and label delay on small streams with known drift."""

import numpy as np
import pytest
from river import feature_extraction as fx
from river import linear_model, naive_bayes, preprocessing, tree

from mlinfra_kit.learning import (
    DriftTriggered,
    Offline,
    Online,
    OnlineMiniBatch,
    Periodic,
    RiverBatch,
    Strategy,
    TorchMLP,
    drift_stream,
    from_samples,
    prequential,
    projects_stream,
    river_dataset,
)

DRIFT = 1500


@pytest.fixture(scope="module")
def abrupt():
    return drift_stream(n=3000, drifts=(DRIFT,), seed=7)


def hoeffding():
    return RiverBatch(lambda: tree.HoeffdingTreeClassifier(grace_period=50))


class Spy(Strategy):
    """Records when each label arrives, and what was predicted before it was learned."""

    name = "spy"

    def __init__(self):
        super().__init__()
        self.log = []
        self.predicted = []

    def predict_one(self, x):
        self.predicted.append(x["i"])
        return None

    def learn_one(self, x, y, t):
        self.log.append((x["i"], t))


def counting_stream(n=50):
    return from_samples([({"i": float(i)}, i % 2) for i in range(n)])


@pytest.mark.parametrize("delay", [0, 1, 7])
def test_labels_arrive_exactly_when_due_and_after_the_prediction(delay):
    spy = Spy()
    result = prequential(counting_stream(), spy, label_delay=delay, progress=False)
    assert spy.log == [(float(i), i + delay) for i in range(50 - delay)]
    for i, t in spy.log:  # sample i was predicted before its label was learned
        assert spy.predicted.index(i) <= t
    assert result.labels_learned == 50 - delay


def test_offline_fits_once_and_never_again(abrupt):
    result = prequential(abrupt, Offline(hoeffding(), initial=500), progress=False)
    assert [e.kind for e in result.events] == ["initial"] and result.retrains == 0
    assert result.events[0].t == 499


def test_periodic_retrains_on_schedule(abrupt):
    result = prequential(
        abrupt, Periodic(hoeffding(), every=500, window=500, initial=500), progress=False
    )
    assert [e.t for e in result.events] == [499, 999, 1499, 1999, 2499, 2999]
    assert all(e.samples == 500 for e in result.events)


def test_drift_triggered_fires_after_the_drift_and_not_before(abrupt):
    strategy = DriftTriggered(TorchMLP(), initial=500, retrain_window=500, input_test=False)
    result = prequential(abrupt, strategy, progress=False)
    retrains = [e for e in result.events if e.kind == "retrain"]
    assert retrains, "ADWIN must notice the abrupt drift"
    assert DRIFT + 200 <= retrains[0].t < DRIFT + 800  # detected, then 200 fresh labels
    assert "ADWIN" in retrains[0].reason and retrains[0].samples == 200
    assert retrains[1].reason.startswith("follow-up") and retrains[1].samples == 500


def test_online_and_drift_triggered_recover_where_offline_does_not(abrupt):
    results = {
        "offline": prequential(abrupt, Offline(TorchMLP(), initial=500), progress=False),
        "drift": prequential(
            abrupt, DriftTriggered(TorchMLP(), initial=500, retrain_window=500), progress=False
        ),
        "online": prequential(
            abrupt, Online(tree.HoeffdingAdaptiveTreeClassifier(seed=0)), progress=False
        ),
    }
    after = {k: r.accuracy_between(DRIFT + 500) for k, r in results.items()}
    assert after["drift"] > after["offline"] + 0.2
    assert after["online"] > after["offline"] + 0.2


def test_input_drift_is_detected_with_a_ks_test():
    rng = np.random.default_rng(0)
    xs = [{"a": float(v)} for v in rng.normal(0, 1, 800)] + [
        {"a": float(v)} for v in rng.normal(3, 1, 800)
    ]
    stream = from_samples([(x, x["a"] > 1.5) for x in xs], drifts=(800,))
    strategy = DriftTriggered(hoeffding(), initial=300, test_every=100, test_window=200)
    result = prequential(stream, strategy, progress=False)
    reasons = [e.reason for e in result.events if e.kind == "retrain"]
    assert reasons and reasons[0].startswith("inputs: KS test on 'a'")
    first = next(e for e in result.events if e.kind == "retrain")
    assert first.t > 800


def test_torch_mlp_fits_and_learns_incrementally(abrupt):
    strategy = OnlineMiniBatch(TorchMLP(epochs=5), batch_size=64)
    result = prequential(abrupt.head(1500), strategy, progress=False)
    assert result.accuracy > 0.6 and result.train_seconds > 0
    mlp = TorchMLP(epochs=3).fit([x for x, _ in abrupt.head(200)], [y for _, y in abrupt.head(200)])
    with pytest.raises(ValueError, match="lacks the feature"):
        mlp.predict_one({"salary": 1.0})


def test_rolling_accuracy_and_recovery():
    from mlinfra_kit.learning.prequential import PrequentialResult

    correct = np.array([True] * 100 + [False] * 20 + [True] * 80)
    r = PrequentialResult("x", correct, [], 0.0, 1.0, 0, 200)
    assert r.rolling(10)[99] == 1.0 and r.rolling(10)[110] == 0.0
    assert r.recovery_samples(100, window=10) == 29
    assert (
        PrequentialResult(
            "y", np.array([True] * 50 + [False] * 50), [], 0, 1, 0, 0
        ).recovery_samples(50, window=10)
        is None
    )


def test_streams():
    phishing = river_dataset("phishing")
    assert len(phishing) == 1250 and isinstance(phishing[0][0], dict)
    projects = projects_stream()
    assert isinstance(projects[0][0], str) and projects[0][1] in {
        "computer-vision",
        "natural-language-processing",
        "mlops",
        "other",
    }
    gradual = drift_stream(n=500, drifts=(200,), width=100)
    assert gradual.name == "agrawal-gradual" and gradual.drifts == (200,)


def test_text_stream_with_a_river_pipeline():
    stream = projects_stream()
    model = fx.BagOfWords(lowercase=True, ngram_range=(1, 2)) | naive_bayes.MultinomialNB()
    result = prequential(stream, Online(model), progress=False)
    assert result.accuracy > 0.5


@pytest.mark.parametrize(
    "samples, message",
    [
        ([], "empty"),
        ([({"a": 1.0}, 1), ({"a": 2.0}, None)], "without a label"),
        ([({"a": 1.0}, 1), ({"b": 2.0}, 0)], "same"),
        ([("text", 1), ({"a": 1.0}, 0)], "not text"),
        ([(3.0, 1)], "dict of features or a text"),
    ],
)
def test_bad_streams(samples, message):
    with pytest.raises(ValueError, match=message):
        from_samples(samples)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Periodic(hoeffding(), every=0), "every"),
        (lambda: Offline(hoeffding(), initial=0), "initial"),
        (lambda: DriftTriggered(hoeffding(), alpha=2), "alpha"),
        (lambda: DriftTriggered(hoeffding(), min_window=5000), "min_window"),
        (lambda: OnlineMiniBatch(TorchMLP(), batch_size=0), "batch_size"),
        (lambda: river_dataset("nope"), "unknown dataset"),
        (lambda: drift_stream(n=100, drifts=(10, 20), functions=(0, 1)), "functions"),
        (
            lambda: prequential(
                counting_stream(), Online(linear_model.LogisticRegression()), label_delay=-1
            ),
            "label_delay",
        ),
        (lambda: RiverBatch(preprocessing.StandardScaler).fit([], []), "empty window"),
        (lambda: TorchMLP().fit([{"a": 1.0}], [1, 2]), "differ in length"),
    ],
)
def test_bad_settings(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_compare_and_rows(abrupt):
    from mlinfra_kit.learning import compare

    stream = abrupt.head(2000)
    results = compare(
        stream,
        {"a": Offline(hoeffding(), initial=300), "b": Online(tree.HoeffdingTreeClassifier())},
        progress=False,
    )
    row = results["a"].row(drift_at=DRIFT, window=200)
    assert row["strategy"] == "a"
    assert {"before_drift", "after_drift", "recovery_samples"} <= set(row)
    assert list(results) == ["a", "b"]
    with pytest.raises(ValueError, match="no strategies"):
        compare(stream, {})


def test_the_mlp_runs_on_one_torch_thread_and_leaves_torch_as_it_was(abrupt):
    import torch

    before = torch.get_num_threads()
    mlp = TorchMLP(epochs=2).fit([x for x, _ in abrupt.head(200)], [y for _, y in abrupt.head(200)])
    assert mlp.threads == 1 and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be 1 or more"):
        TorchMLP(threads=0)
