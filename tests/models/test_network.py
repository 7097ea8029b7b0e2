"""The network's NumPy twin: the same probabilities as torch, and only where it applies."""

import numpy as np
import pytest
import torch

from mlinfra_kit.models.network import TextClassifierNet, as_tensors, numpy_forward
from mlinfra_kit.models.quantize import dynamic_int8

CPU = torch.device("cpu")


def torch_proba(net, ids, weights, offsets=None):
    offsets = np.zeros(1, np.int64) if offsets is None else offsets
    with torch.inference_mode():
        return torch.softmax(net(*as_tensors((ids, offsets, weights), CPU)), dim=1).numpy()


def lone(forward, ids, weights):
    return forward(ids, np.zeros(1, np.int64), weights)


@pytest.mark.parametrize("hidden_dim", [0, 16])
def test_the_twin_computes_what_torch_computes(hidden_dim):
    torch.manual_seed(0)
    net = TextClassifierNet(
        vocab_size=500, n_classes=4, embed_dim=8, hidden_dim=hidden_dim, dropout=0.3
    )
    net.eval()
    forward = numpy_forward(net)
    rng = np.random.default_rng(0)
    for size in (1, 3, 60):
        ids = rng.choice(500, size=size, replace=False)
        weights = rng.random(size, dtype=np.float32)
        got = lone(forward, ids, weights)
        assert got.shape == (1, 4) and got.dtype == np.float32
        np.testing.assert_allclose(got, torch_proba(net, ids, weights), atol=1e-6)


@pytest.mark.parametrize("lengths", [[3, 1, 4], [2, 0, 5], [0, 3], [4, 0], [0, 0]])
def test_the_twin_computes_a_batch_as_torch_does_empty_texts_included(lengths):
    """A few texts at once (the embedding sums per text), texts without features among them."""
    torch.manual_seed(1)
    net = TextClassifierNet(vocab_size=300, n_classes=5, embed_dim=6, hidden_dim=7).eval()
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 300, size=sum(lengths))
    weights = rng.random(sum(lengths), dtype=np.float32)
    offsets = np.concatenate(([0], np.cumsum(lengths[:-1]))).astype(np.int64)
    got = numpy_forward(net)(ids, offsets, weights)
    assert got.shape == (len(lengths), 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, torch_proba(net, ids, weights, offsets), atol=1e-6)
    none = np.zeros(0, np.int64)
    assert numpy_forward(net)(none, none, none.astype(np.float32)).shape == (0, 5)  # no texts


def test_the_twin_reads_the_parameters_not_a_copy():
    net = TextClassifierNet(vocab_size=20, n_classes=3).eval()
    forward = numpy_forward(net)
    ids, weights = np.array([2, 5]), np.array([0.5, 0.5], np.float32)
    with torch.no_grad():
        net.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 50.0]))  # changed in place, as a load does
    assert lone(forward, ids, weights).argmax() == 2
    np.testing.assert_allclose(
        lone(forward, ids, weights), torch_proba(net, ids, weights), atol=1e-6
    )


def test_no_twin_where_only_torch_runs_the_network():
    net = TextClassifierNet(vocab_size=20, n_classes=3).eval()
    assert numpy_forward(dynamic_int8(net)) is None  # quantized layers
    assert numpy_forward(net.double()) is None  # not float32
    hooked = TextClassifierNet(vocab_size=20, n_classes=3).eval()
    hooked.head.register_forward_hook(lambda module, args, out: out * 2)
    assert numpy_forward(hooked) is None
    assert numpy_forward(torch.nn.Linear(3, 3)) is None
