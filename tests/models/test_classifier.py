import json

import numpy as np
import pytest
import torch

from mlinfra_kit.data import TAGS, load_holdout, train_val_split
from mlinfra_kit.models import TagClassifier, evaluate


def test_learns_better_than_the_majority_baseline(trained, projects):
    holdout = load_holdout()
    ev = trained.evaluate(holdout.texts, holdout.tags)
    majority = max(projects.tag_counts(), key=projects.tag_counts().get)
    baseline = evaluate(holdout.tags, [majority] * len(holdout), TAGS)
    assert ev.macro_f1 > baseline.macro_f1 + 0.4
    assert ev.accuracy > 0.7


def test_history_and_early_stopping(trained):
    assert 1 <= trained.best_epoch_ <= len(trained.history_) <= 60
    assert {"train_loss", "val_loss", "val_macro_f1", "seconds"} <= set(trained.history_[0])
    assert trained.history_[-1]["train_loss"] < trained.history_[0]["train_loss"]
    assert trained.train_seconds_ > 0


def test_predict_returns_tags_and_probabilities(trained):
    (pred,) = trained.predict(["Object detection with YOLO on webcam video frames"])
    assert pred.tag == "computer-vision"
    assert list(pred.probabilities) == list(TAGS)
    assert sum(pred.probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert trained.predict_proba([]).shape == (0, 4)
    assert trained.predict(["", "???"])[0].tag in TAGS  # nothing known still gets an answer


def test_training_is_deterministic_and_leaves_global_rng_alone(projects):
    small = projects[:200]
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = TagClassifier(epochs=2, progress=False, device="cpu", seed=5).fit(small.texts, small.tags)
    assert torch.equal(torch.rand(1), expected_next)
    b = TagClassifier(epochs=2, progress=False, device="cpu", seed=5).fit(small.texts, small.tags)
    c = TagClassifier(epochs=2, progress=False, device="cpu", seed=6).fit(small.texts, small.tags)
    for (name, wa), wb in zip(
        a.net_.state_dict().items(), b.net_.state_dict().values(), strict=True
    ):
        assert torch.equal(wa, wb), name
    assert not torch.equal(a.net_.head[-1].weight, c.net_.head[-1].weight)


def test_artifact_round_trip(trained, tmp_path):
    texts = load_holdout().texts[:20]
    path = trained.save(tmp_path / "model", metrics={"macro_f1": 0.5})
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["tags"] == list(TAGS) and meta["metrics"] == {"macro_f1": 0.5}
    assert len(meta["version"]) == 12  # a hash of the weights when no version is given
    loaded = TagClassifier.load(path)
    np.testing.assert_allclose(loaded.predict_proba(texts), trained.predict_proba(texts))
    assert loaded.version == meta["version"] and loaded.get_params() == trained.get_params()
    # the weights file holds tensors only: the safe loader reads it
    state = torch.load(path / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    # saving again over an existing artifact replaces it whole
    trained.save(path, version="2")
    assert TagClassifier.load(path).version == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_int8_load_keeps_the_answers_and_shrinks_the_linear_layers(trained, tmp_path):
    from mlinfra_kit.optimization import is_quantized

    texts = load_holdout().texts[:200]
    path = trained.save(tmp_path / "model")
    fp32, int8 = TagClassifier.load(path), TagClassifier.load(path, quantize="int8")
    assert is_quantized(int8.net_) and not is_quantized(fp32.net_)
    agree = np.mean(
        [a.tag == b.tag for a, b in zip(fp32.predict(texts), int8.predict(texts), strict=True)]
    )
    assert agree > 0.95
    with pytest.raises(ValueError, match="quantize"):
        TagClassifier.load(path, quantize="int4")


def test_loading_something_else_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model artifact"):
        TagClassifier.load(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"")
    (tmp_path / "metadata.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a mlinfra-kit.tag-classifier artifact"):
        TagClassifier.load(tmp_path)
    (tmp_path / "metadata.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        TagClassifier.load(tmp_path)


@pytest.mark.parametrize(
    "texts, tags, error, message",
    [
        ("one text", ["mlops"], TypeError, "list of strings"),
        (["a", 3], ["mlops", "mlops"], TypeError, "texts\\[1\\] is int"),
        (["a", "b"], ["mlops"], ValueError, "got 2 texts but 1 tags"),
        (["a"], ["robotics"], ValueError, "unknown tags \\['robotics'\\]"),
        ([], [], ValueError, "zero texts"),
    ],
)
def test_fit_rejects_bad_input(texts, tags, error, message):
    with pytest.raises(error, match=message):
        TagClassifier(progress=False, device="cpu").fit(texts, tags)


def test_bad_configuration_and_unfitted_use(projects):
    with pytest.raises(ValueError, match="epochs must be 1 or more"):
        TagClassifier(epochs=0, progress=False).fit(projects.texts[:5], projects.tags[:5])
    with pytest.raises(ValueError, match="class_weight"):
        TagClassifier(class_weight="auto", progress=False).fit(
            projects.texts[:5], projects.tags[:5]
        )
    with pytest.raises(ValueError, match="not trained yet"):
        TagClassifier().predict(["x"])


@pytest.mark.gpu
def test_trains_and_predicts_on_gpu(projects):
    train, val = train_val_split(projects, 0.2)
    model = TagClassifier(epochs=3, progress=False, device="cuda")
    model.fit(train.texts, train.tags, val.texts, val.tags)
    assert model.net_.head[-1].weight.is_cuda
    assert model.predict(["object detection"])[0].tag in TAGS


def _noisy_dip_curve() -> list[float]:
    """A validation loss with a lucky dip at epoch 3 that the next 40 epochs stay above,
    then a real descent to a much lower minimum at epoch 55."""
    curve = [0.6, 0.5, 0.3] + [0.5] * 40
    curve += [0.5 - 0.03 * k for k in range(1, 13)]  # epochs 44-55: 0.47 ... 0.14
    return curve + [0.2] * 40


def test_early_stopping_does_not_stop_on_a_noisy_early_dip():
    from mlinfra_kit.models.classifier import EarlyStopping

    def run(stopping):
        for epoch, loss in enumerate(_noisy_dip_curve(), 1):
            stopping.update(epoch, loss)
            if stopping.should_stop:
                break
        return stopping.best_epoch, stopping.epoch

    assert run(EarlyStopping(patience=30, min_epochs=1)) == (3, 33)  # no floor: fooled
    best, stopped = run(EarlyStopping(patience=30, min_epochs=50))
    assert best == 55 and stopped == 85


def test_min_epochs_is_checked(projects):
    with pytest.raises(ValueError, match="min_epochs"):
        TagClassifier(min_epochs=0, progress=False).fit(projects.texts[:20], projects.tags[:20])
