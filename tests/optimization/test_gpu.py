"""GPU compression: the pieces that run anywhere are checked here on the CPU; the kernels
themselves (semi-structured, float8/int8 on tensor cores, the sweep) in ``gpu`` tests."""

import pytest
import torch

from mlinfra_kit import measure
from mlinfra_kit.optimization import (
    accuracy,
    gpu_linear_sweep,
    gpu_variants,
    load_digits,
    low_bit_linears,
    mlp,
    prune_2to4,
    semi_structured,
    to_dtype,
    train,
)
from mlinfra_kit.optimization.gpu import (
    GPU_FORMATS,
    Float8Linear,
    Int8Linear,
    is_2to4,
    mask_2to4,
)


@pytest.fixture(scope="module")
def flat():
    return load_digits(seed=0).flat()


@pytest.fixture(scope="module")
def wide_mlp(flat):
    """Hidden widths that every 2:4 and low-bit kernel accepts (multiples of 64)."""
    return train(mlp((64, 128, 128, 10)), flat.x_train, flat.y_train, epochs=4, progress=False)


def test_mask_keeps_the_two_largest_of_every_four():
    weight = torch.randn(8, 16)
    mask = mask_2to4(weight)
    assert mask.reshape(8, 4, 4).sum(-1).eq(2).all()
    kept = (weight.abs() * mask).reshape(8, 4, 4).sum(-1)
    assert torch.allclose(kept, weight.abs().reshape(8, 4, 4).topk(2, -1).values.sum(-1))
    with pytest.raises(ValueError, match="multiple of 4"):
        mask_2to4(torch.zeros(2, 6))


def test_prune_2to4_prunes_eligible_layers_and_keeps_training_inside_the_pattern(wide_mlp, flat):
    tuned = prune_2to4(
        wide_mlp, retrain=lambda m: train(m, flat.x_train, flat.y_train, epochs=1, progress=False)
    )
    linear = [m for m in tuned if isinstance(m, torch.nn.Linear)]
    assert [is_2to4(m.weight) for m in linear] == [True, True, False]  # 10 outputs: dense
    assert float((linear[1].weight == 0).float().mean()) == pytest.approx(0.5)
    assert accuracy(tuned, flat.x_test, flat.y_test) > 0.85
    assert not is_2to4(wide_mlp[2].weight)  # the original is untouched
    with pytest.raises(ValueError, match="2:4-compatible"):
        prune_2to4(mlp((10, 30, 3)))


@pytest.mark.parametrize("layer_type, tolerance", [(Float8Linear, 0.08), (Int8Linear, 0.02)])
def test_low_bit_linears_store_8_bits_and_stay_close(layer_type, tolerance):
    linear = torch.nn.Linear(64, 32)
    low = layer_type(linear)
    assert low.weight.element_size() == 1
    for rows in (1, 5, 40):  # int8 pads small batches for the CUDA kernel, then drops them
        x = torch.randn(rows, 64)
        with torch.no_grad():
            out, expected = low(x).float(), linear(x)
        assert out.shape == expected.shape
        assert float((out - expected).norm() / expected.norm()) < tolerance


@pytest.mark.parametrize("kind", ["float8", "int8"])
def test_low_bit_model_is_smaller_and_as_accurate(wide_mlp, flat, kind):
    low = low_bit_linears(wide_mlp, kind)
    assert sum(isinstance(m, Float8Linear | Int8Linear) for m in low.modules()) == 2
    assert measure.model_size_bytes(low) < measure.model_size_bytes(wide_mlp) / 2.5
    assert low(flat.x_test).dtype == torch.float32
    assert (
        accuracy(low, flat.x_test, flat.y_test)
        > accuracy(wide_mlp, flat.x_test, flat.y_test) - 0.02
    )


def test_lower_precision_is_a_drop_in_replacement(wide_mlp, flat):
    half = to_dtype(wide_mlp, torch.bfloat16)
    assert next(half.parameters()).dtype == torch.bfloat16
    assert next(wide_mlp.parameters()).dtype == torch.float32
    assert half(flat.x_test).dtype == torch.float32
    assert (
        accuracy(half, flat.x_test, flat.y_test)
        > accuracy(wide_mlp, flat.x_test, flat.y_test) - 0.02
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: to_dtype(mlp((4, 2)), torch.int8), "bfloat16 or torch.float16"),
        (lambda: low_bit_linears(mlp((64, 64)), "int4"), "unknown low-bit kind"),
        (lambda: low_bit_linears(mlp((10, 3)), "int8"), "multiple of 16"),
        (lambda: semi_structured(mlp((64, 64)), backend="cublas"), "backend must be"),
        (
            lambda: (
                gpu_linear_sweep("cuda", formats=["fp64"])
                if torch.cuda.is_available()
                else gpu_linear_sweep("cpu")
            ),
            "unknown formats|needs a CUDA device",
        ),
    ],
)
def test_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
@pytest.mark.parametrize(
    "call",
    [
        lambda: gpu_linear_sweep("cpu"),
        lambda: semi_structured(prune_2to4(mlp((64, 64, 10)))),
        lambda: gpu_variants(mlp((64, 64, 10))),
    ],
)
def test_gpu_only_parts_say_they_need_cuda(call):
    with pytest.raises(ValueError, match="needs a CUDA device"):
        call()


@pytest.mark.gpu
def test_gpu_variants_all_run_and_keep_accuracy(wide_mlp, flat):
    dev = torch.device("cuda")
    model = mlp((64, 128, 128, 10)).to(dev)
    model.load_state_dict(wide_mlp.state_dict())
    x, y = flat.x_test.to(dev), flat.y_test.to(dev)
    variants = gpu_variants(
        model,
        retrain=lambda m: train(
            m, flat.x_train.to(dev), flat.y_train.to(dev), epochs=1, progress=False
        ),
    )
    assert {"fp32", "bf16", "fp16", "fp16 2:4"} <= set(variants)
    base = accuracy(model, x, y)
    for name, (variant, sized) in variants.items():
        assert accuracy(variant, x, y) > base - 0.03, name
        assert measure.model_size_bytes(sized) > 0


@pytest.mark.gpu
def test_semi_structured_stores_compressed_and_matches_dense():
    from torch.sparse import SparseSemiStructuredTensor

    pruned = prune_2to4(torch.nn.Linear(256, 128)).cuda()
    x = torch.randn(64, 256, device="cuda")
    dense = to_dtype(pruned, torch.float16)(x)
    ampere = torch.cuda.get_device_capability()[0] == 8
    for backend in (None, "cusparselt", "cutlass"):
        if backend == "cutlass" and not ampere:
            with pytest.raises(ValueError, match="compute capability 8.x"):
                semi_structured(pruned, backend=backend)
            continue
        sparse = semi_structured(pruned, backend=backend)
        assert isinstance(sparse.model.weight, SparseSemiStructuredTensor)
        assert type(sparse.model.weight).__name__.endswith("CUTLASS") == (backend == "cutlass")
        assert torch.allclose(sparse(x), dense, rtol=1e-2, atol=1e-2)
    with pytest.raises(ValueError, match="not 2:4 sparse"):
        semi_structured(torch.nn.Linear(256, 128).cuda())


@pytest.mark.gpu
def test_gpu_linear_sweep_rows():
    rows = gpu_linear_sweep("cuda", size=1024, batch=256, repeat=3, warmup=1)
    assert tuple(r["variant"] for r in rows) == GPU_FORMATS
    timed = [r for r in rows if "p50_ms" in r]
    assert {"fp32", "bf16", "fp16 2:4"} <= {r["variant"] for r in timed}
    for r in timed:
        assert r["p50_ms"] > 0 and r["rel_error"] < 0.1, r
