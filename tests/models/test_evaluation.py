import pytest

from mlinfra_kit.models import evaluate


def test_metrics_by_hand():
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", "c", "c"]
    ev = evaluate(y_true, y_pred, ["a", "b", "c"])
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    a, b, c = ev.per_class
    assert (a["precision"], a["recall"]) == (1.0, pytest.approx(2 / 3))
    assert (b["precision"], b["recall"]) == (0.5, 0.5)
    assert (c["precision"], c["recall"], c["support"]) == (0.5, 1.0, 1)
    f1s = [0.8, 0.5, 2 / 3]
    assert ev.macro_f1 == pytest.approx(sum(f1s) / 3)
    assert ev.metrics("holdout_")["holdout_f1_b"] == pytest.approx(0.5)


def test_a_class_never_predicted_scores_zero_not_nan():
    ev = evaluate(["a", "b"], ["a", "a"], ["a", "b"])
    assert ev.per_class[1]["f1"] == 0.0 and ev.per_class[1]["precision"] == 0.0


@pytest.mark.parametrize(
    "args, message",
    [
        ((["a"], ["a", "b"], ["a", "b"]), "y_true has 1 labels but y_pred has 2"),
        (([], [], ["a"]), "empty"),
        ((["a"], ["z"], ["a"]), "labels \\['z'\\] are not in"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        evaluate(*args)
