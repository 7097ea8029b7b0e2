"""The reference baseline and the tag model on a slice of the course's real projects:
sanity bounds, not the goal numbers (00_quickstart measures those at full size)."""

import pytest
import torch

from mlinfra_kit.data import TAGS, load_split, train_val_split
from mlinfra_kit.models import TagClassifier, TfidfLogReg, evaluate, torch_threads


@pytest.fixture(scope="module")
def real():
    split = load_split("made-with-ml")
    return split.train[:300], split.holdout


def test_the_baseline_beats_the_majority_on_real_data(real):
    train, holdout = real
    baseline = TfidfLogReg().fit(train.texts, train.tags)
    ev = baseline.evaluate(holdout.texts, holdout.tags)
    majority = evaluate(holdout.tags, ["natural-language-processing"] * len(holdout), TAGS)
    assert ev.weighted_f1 > majority.weighted_f1 + 0.4 and baseline.train_seconds_ > 0
    with pytest.raises(ValueError, match="unknown tags"):
        TfidfLogReg().fit(["a"], ["robotics"])
    with pytest.raises(ValueError, match="not trained"):
        TfidfLogReg().predict(["a"])


def test_the_tag_model_learns_real_data_and_refits_on_everything(real):
    train, holdout = real
    fit, val = train_val_split(train, 0.2, seed=0)
    model = TagClassifier(epochs=80, progress=False, device="cpu")
    model.fit(fit.texts, fit.tags, val.texts, val.tags)
    ev = model.evaluate(holdout.texts, holdout.tags)
    assert ev.weighted_f1 > 0.7 and ev.macro_f1 > 0.6
    assert 1 <= model.best_epoch_ <= len(model.history_) <= 80
    # the refit's vocabulary was built from the training and validation texts together
    only_fit = TagClassifier(epochs=5, progress=False, device="cpu", refit=False)
    only_fit.fit(fit.texts, fit.tags, val.texts, val.tags)
    assert len(model.vocab_) > len(only_fit.vocab_)


def test_training_runs_on_the_chosen_threads_and_restores_them(real):
    train, _ = real
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    TagClassifier(epochs=2, progress=False, device="cpu", threads=1).fit(train.texts, train.tags)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        TagClassifier(threads=0, progress=False).fit(train.texts, train.tags)
