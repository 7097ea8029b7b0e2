import pytest
import torch

from mlinfra_kit import device


def test_cpu_and_auto():
    assert device.pick("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.pick("auto").type == expected
    assert device.pick(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["tpu", "cpu:0", "cuda:x", "", "gpu"])
def test_unknown_device_names_the_choices(spec):
    with pytest.raises(ValueError, match="use 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        device.pick(spec)


def test_wrong_type():
    with pytest.raises(TypeError, match="device must be a string"):
        device.pick(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_unavailable_cuda_says_what_to_use():
    with pytest.raises(ValueError, match="CUDA is not available.*DEVICE='cpu'"):
        device.pick("cuda")


def test_is_cuda_and_synchronize_on_cpu():
    assert device.is_cuda("cuda:1") and device.is_cuda(torch.device("cuda", 0))
    assert not device.is_cuda("cpu") and not device.is_cuda(None)
    device.synchronize("cpu")  # a no-op, must not need CUDA
    assert device.describe("cpu") == "cpu"


@pytest.mark.gpu
def test_gpu_index_out_of_range_and_describe():
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"has {count} GPU"):
        device.pick(f"cuda:{count}")
    assert device.describe(device.pick("cuda")).startswith("cuda:0 (")
