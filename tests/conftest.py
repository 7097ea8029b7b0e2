"""Shared fixtures: a small trained model and notebooks made on the fly for runner tests."""

from __future__ import annotations

import matplotlib
import pytest
from helpers import RECORD, make_notebook, skip_unless_ci

matplotlib.use("Agg")  # this test process only; executed notebooks keep their inline figures


#: Tests that start a local Ray cluster run one after another on one xdist worker (two
#: clusters at once on two cores would only slow each other down).
RAY_GROUP = {"tests/scale/test_scale.py", "tests/test_sweep.py", "08_scale_out", "10_sweeps"}


def pytest_collection_modifyitems(config, items):
    """Skip the GPU tests without a GPU, and put each test in an xdist group (``make test``
    runs ``pytest -n 2 --dist loadgroup``): a module's tests together, so its module
    fixtures (a server, JupyterLab) start once; each notebook's execution apart, so two
    notebooks run side by side; Ray's tests together."""
    import torch

    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is available on this machine")
    cuda = torch.cuda.is_available()
    for item in items:
        if item.get_closest_marker("gpu") and not cuda:
            item.add_marker(skip)
        group = item.nodeid.split("::")[0]
        if item.get_closest_marker("notebooks"):
            group = item.callspec.id if hasattr(item, "callspec") else group
        item.add_marker(pytest.mark.xdist_group("ray" if group in RAY_GROUP else group))


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory):
    """Servers the tests start write their admin tokens here, not in ~/.mlinfra."""
    import os

    folder = tmp_path_factory.mktemp("mlinfra-state")
    previous = os.environ.get("MLINFRA_STATE_DIR")
    os.environ["MLINFRA_STATE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("MLINFRA_STATE_DIR", None)
    else:
        os.environ["MLINFRA_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def projects():
    from mlinfra_kit.data import load_projects

    return load_projects()


@pytest.fixture(scope="session")
def trained(projects):
    """A tag classifier trained (briefly) on the shipped synthetic data, shared by the tests."""
    from mlinfra_kit.data import train_val_split
    from mlinfra_kit.models import TagClassifier

    train, val = train_val_split(projects, 0.2, seed=0)
    model = TagClassifier(epochs=60, progress=False, device="cpu")
    return model.fit(train.texts, train.tags, val.texts, val.tags)


@pytest.fixture
def tiny_notebooks(tmp_path):
    """A folder with one notebook that records a metric and one that fails in cell 2."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "01_good.ipynb", RECORD.format(name="01_good"))
    make_notebook(folder / "02_broken.ipynb", "x = 1\nraise ValueError('broken on purpose')")
    return folder


@pytest.fixture(scope="session")
def artifact(trained, tmp_path_factory):
    """The shared model saved as an artifact folder, version "v1"."""
    return trained.save(tmp_path_factory.mktemp("artifacts") / "tag-classifier", version="v1")


@pytest.fixture(scope="session")
def redis_url():
    """A real redis-server on a free loopback port for the whole session.

    Without redis-server the Redis tests skip, except in CI (``CI=true``), where
    ``.ci/run`` installs it and a skip would hide a broken backend.
    """
    from mlinfra_kit.services import redis_available, redis_server

    if not redis_available():
        skip_unless_ci("redis-server is not installed (apt-get install redis-server)")
    with redis_server() as server:
        yield server.url
