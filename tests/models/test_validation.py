"""Cross-validation a reviewer trusts: folds disjoint, covering, stratified; the time split
trains on the past only; both models scored on the same folds and paired. And the fair
reference: word and character n-grams, its regularisation chosen on the training data."""

import pytest

from mlinfra_kit.data import load_projects
from mlinfra_kit.models import TfidfLogReg, cross_validate, stratified_folds


@pytest.fixture(scope="module")
def projects():
    return load_projects("synthetic")[:300]


def test_folds_are_disjoint_cover_everything_and_keep_the_class_balance(projects):
    folds = stratified_folds(projects, 5, seed=1)
    assert sum(len(f) for f in folds) == len(projects) == len(set().union(*folds))
    assert max(len(f) for f in folds) - min(len(f) for f in folds) <= 1
    share = {t: n / len(projects) for t, n in projects.tag_counts().items()}
    for fold in folds:
        tags = [p.tag for p in projects if p.id in fold]
        for tag, expected in share.items():
            assert abs(tags.count(tag) / len(tags) - expected) < 0.05
    assert stratified_folds(projects, 5, seed=1) == folds  # deterministic in the seed
    with pytest.raises(ValueError, match="folds must be 2"):
        stratified_folds(projects, 1)


def test_both_models_are_scored_on_the_same_folds_and_paired(projects):
    seen = []

    def fit(train):
        seen.append(frozenset(train.ids))
        return TfidfLogReg(ngrams=1).fit(train.texts, train.tags)

    cv = cross_validate(projects, fit, fit, folds=3, progress=False)
    assert seen[0::2] == seen[1::2]  # A and B trained on the same projects, fold by fold
    assert [r["a"] for r in cv.rows] == [r["b"] for r in cv.rows]
    assert cv.comparison.estimate == 0 and cv.comparison.verdict(at_least=0.0) == "inconclusive"
    assert cv.summary()["b_wins"] == 0 and cv.summary()["a_worst"] <= cv.summary()["a_mean"]
    assert cv.comparison.noise == 0  # a deterministic model against itself: no noise floor
    seeded = cross_validate(projects, fit, fit, folds=3, progress=False, noise=0.01)
    assert seeded.comparison.noise == 0.01


def test_the_time_split_trains_on_the_past_only(projects):
    trained_on = []

    def fit(train):
        trained_on.append(max(p.created_on for p in train))
        return TfidfLogReg(ngrams=1).fit(train.texts, train.tags)

    cv = cross_validate(projects, fit, fit, kind="time", holdout_fraction=0.25, progress=False)
    (row,) = cv.rows
    newest_tested = sorted(p.created_on for p in projects)[-row["test"]]
    assert trained_on[0] <= newest_tested and row["test"] == round(0.25 * len(projects))
    with pytest.raises(ValueError, match="kind"):
        cross_validate(projects, fit, fit, kind="random")


@pytest.mark.slow
def test_the_fair_reference_reads_character_ngrams_and_chooses_its_c(projects):
    reference = TfidfLogReg(char_ngrams=(2, 5), C="cv", class_weight="balanced")
    reference.fit(projects.texts, projects.tags)
    assert reference.C_ in (1.0, 3.0, 10.0, 30.0, 100.0)
    union = reference.pipeline_.steps[0][1]
    assert [t[1].analyzer for t in union.transformer_list] == ["word", "char_wb"]
    assert reference.evaluate(projects.texts, projects.tags).accuracy > 0.8
    with pytest.raises(ValueError, match="C must be"):
        TfidfLogReg(C="best").fit(projects.texts, projects.tags)
