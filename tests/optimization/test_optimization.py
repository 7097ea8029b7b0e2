"""Each technique on tiny models: really sparse, really int8, correct losses, clear errors."""

import math

import pytest
import torch
from torch.nn import functional as F

from mlinfra_kit.models import torch_threads
from mlinfra_kit.optimization import (
    SmallCNN,
    accuracy,
    benchmark,
    compare_speed,
    distill,
    distillation_loss,
    dynamic_int8,
    is_quantized,
    load_digits,
    mlp,
    pick,
    prune_neurons,
    prune_unstructured,
    pt2e_int8,
    sparse_vs_dense,
    sparsity,
    speedup,
    static_int8,
    torchao_int8,
    train,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def small_mlp(digits):
    flat = digits.flat()
    return train(mlp((64, 128, 128, 10)), flat.x_train, flat.y_train, epochs=5, progress=False)


def test_digits_are_shipped_and_split(digits):
    assert digits.x_train.shape[1:] == (1, 8, 8)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert abs(float(digits.x_train.mean())) < 1e-4


@pytest.mark.parametrize("amount", [0.0, 0.5, 0.9])
def test_unstructured_pruning_reaches_the_sparsity(small_mlp, amount):
    pruned = prune_unstructured(small_mlp, amount)
    assert sparsity(pruned) == pytest.approx(amount, abs=0.01)
    assert sparsity(small_mlp) < 0.01  # the original is untouched


def test_neuron_pruning_builds_a_smaller_equivalent_layout(small_mlp, digits):
    pruned = prune_neurons(small_mlp, 0.5)
    widths = [m.out_features for m in pruned if isinstance(m, torch.nn.Linear)]
    assert widths == [64, 64, 10]
    flat = digits.flat()
    assert pruned(flat.x_test).shape == (len(flat.x_test), 10)
    same = prune_neurons(small_mlp, 0.0)
    assert torch.allclose(same(flat.x_test), small_mlp(flat.x_test), atol=1e-5)


def test_dynamic_int8_is_really_int8_and_smaller(small_mlp, digits):
    quantized = dynamic_int8(small_mlp)
    assert is_quantized(quantized) and not is_quantized(small_mlp)
    flat = digits.flat()
    base = benchmark("fp32", small_mlp, lambda b: torch.randn(b, 64), repeat=5)
    q = benchmark("int8", quantized, lambda b: torch.randn(b, 64), repeat=5)
    assert q["size_mb"] < base["size_mb"] / 3
    assert (
        accuracy(quantized, flat.x_test, flat.y_test)
        > accuracy(small_mlp, flat.x_test, flat.y_test) - 0.03
    )
    assert speedup(base, q) == base["p50_ms_b64"] / q["p50_ms_b64"]
    with pytest.raises(ValueError, match="batch size 8"):
        speedup(base, q, batch=8)


def test_static_int8_cnn(digits):
    cnn = train(SmallCNN(channels=8), digits.x_train, digits.y_train, epochs=2, progress=False)
    engine = torch.backends.quantized.engine
    quantized = static_int8(
        cnn, digits.x_train.split(64)[:3], fuse=[["conv1", "relu1"], ["conv2", "relu2"]]
    )
    assert torch.backends.quantized.engine == engine  # the process-wide engine is restored
    assert is_quantized(quantized)
    assert (
        abs(
            accuracy(quantized, digits.x_test, digits.y_test)
            - accuracy(cnn, digits.x_test, digits.y_test)
        )
        < 0.05
    )
    with pytest.raises(ValueError, match="calibration batch"):
        static_int8(cnn, [])


@pytest.mark.slow
def test_torchao_and_pt2e_paths(small_mlp, digits):
    flat = digits.flat()
    ao = torchao_int8(small_mlp)
    assert accuracy(ao, flat.x_test, flat.y_test) > 0.8
    cnn = train(SmallCNN(channels=8), digits.x_train, digits.y_train, epochs=2, progress=False)
    pt = pt2e_int8(cnn, digits.x_train[:16], [digits.x_train[:64]])
    assert pt(digits.x_test[:37]).shape == (37, 10)  # chunked and padded to batch 16
    assert (
        abs(
            accuracy(pt, digits.x_test, digits.y_test) - accuracy(cnn, digits.x_test, digits.y_test)
        )
        < 0.05
    )


def test_distillation_loss_matches_a_hand_computation():
    s = torch.tensor([[2.0, 0.0, -1.0]])
    t = torch.tensor([[1.0, 0.5, 0.0]])
    y = torch.tensor([1])
    temperature, alpha = 2.0, 0.3
    p_t = torch.softmax(t / temperature, 1)
    log_p_s = torch.log_softmax(s / temperature, 1)
    kl = float((p_t * (p_t.log() - log_p_s)).sum())
    ce = float(F.cross_entropy(s, y))
    expected = alpha * temperature**2 * kl + (1 - alpha) * ce
    assert math.isclose(
        float(distillation_loss(s, t, y, temperature, alpha)), expected, rel_tol=1e-5
    )
    soft_only = temperature**2 * kl  # no labels: the teacher's outputs alone
    assert math.isclose(float(distillation_loss(s, t, None, temperature)), soft_only, rel_tol=1e-5)


def test_distilled_student_learns(small_mlp, digits):
    flat = digits.flat()
    student = distill(
        mlp((64, 32, 10), seed=1),
        small_mlp,
        flat.x_train,
        flat.y_train,
        epochs=15,
        lr=5e-3,
        progress=False,
    )
    assert accuracy(student, flat.x_test, flat.y_test) > 0.8


def test_a_student_learns_from_the_teacher_without_labels(small_mlp, digits):
    flat = digits.flat()
    student = distill(
        mlp((64, 32, 10), seed=1), small_mlp, flat.x_train, None, epochs=15, lr=5e-3, progress=False
    )
    assert accuracy(student, flat.x_test, flat.y_test) > 0.8


def test_sparse_vs_dense_rows():
    rows = sparse_vs_dense(256, (0.5, 0.99), batch=8, repeat=3)
    assert [r["sparsity"] for r in rows] == [0.5, 0.99] and all(r["csr_p50_ms"] > 0 for r in rows)


def test_compare_speed_says_how_many_times_faster_the_other_model_runs():
    big, small = torch.nn.Linear(512, 512), torch.nn.Linear(512, 4)  # 128x the multiply-adds
    make_input = lambda b: torch.randn(b, 512)  # noqa: E731
    with torch_threads(1):  # torch's spare threads spin on a busy machine and blur both timings
        faster = compare_speed(
            big, small, make_input, calls=5, names=("big", "small"), max_rounds=4
        )
        slower = compare_speed(small, big, make_input, calls=5, max_rounds=4)
    assert faster.names == ("big", "small") and faster.repeats >= 3
    assert faster.verdict(at_least=1.5) == "held" and slower.verdict(at_least=1.0) == "not_held"


def test_pick_respects_the_budget():
    rows = [
        {"variant": "big", "accuracy": 0.95, "p50_ms_b1": 3.0, "size_mb": 10.0},
        {"variant": "mid", "accuracy": 0.93, "p50_ms_b1": 1.0, "size_mb": 3.0},
        {"variant": "tiny", "accuracy": 0.80, "p50_ms_b1": 0.2, "size_mb": 0.5},
    ]
    assert pick(rows)["variant"] == "big"
    assert pick(rows, max_latency_ms=2.0)["variant"] == "mid"
    assert pick(rows, max_size_mb=1.0)["variant"] == "tiny"
    with pytest.raises(ValueError, match="no variant fits"):
        pick(rows, max_latency_ms=0.1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: prune_unstructured(mlp((4, 4, 2)), 1.0), r"\[0, 1\)"),
        (lambda: prune_unstructured(mlp((4, 4, 2)), -0.1), r"\[0, 1\)"),
        (lambda: prune_neurons(mlp((4, 2)), 0.5), "two Linear"),
        (
            lambda: distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), 0.0),
            "temperature",
        ),
        (
            lambda: distillation_loss(
                torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), 2.0, alpha=1.5
            ),
            "alpha",
        ),
        (lambda: static_int8(SmallCNN(), [torch.zeros(1, 1, 8, 8)], backend="nope"), "backend"),
        (
            lambda: benchmark("x", mlp((4, 2)), lambda b: torch.zeros(b, 4), batch_sizes=(0,)),
            "positive",
        ),
        (lambda: mlp((4,)), "at least"),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.gpu
def test_gpu_half_precision_matches_fp32(small_mlp, digits):
    flat = digits.flat()
    gpu = small_mlp.to("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = gpu(flat.x_test.to("cuda"))
    assert (out.argmax(1).cpu() == small_mlp.cpu()(flat.x_test).argmax(1)).float().mean() > 0.95


def test_fine_tuning_keeps_pruned_weights_at_zero(small_mlp, digits):
    flat = digits.flat()
    tuned = prune_unstructured(
        small_mlp,
        0.8,
        retrain=lambda m: train(m, flat.x_train, flat.y_train, epochs=1, progress=False),
    )
    assert sparsity(tuned) == pytest.approx(0.8, abs=0.01)
