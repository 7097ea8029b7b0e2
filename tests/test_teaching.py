"""The notebooks' mechanism cells show the kit's own code, docstrings left out."""

import pytest

from mlinfra_kit.online_testing.router import bucket
from mlinfra_kit.teaching import source


def test_shows_the_code_that_runs_without_its_docstring():
    text = source(bucket).data
    assert "def bucket(experiment: str, user_id: str" in text
    assert bucket.__doc__.strip().splitlines()[0] not in text
    assert "mlinfra_kit/online_testing/router.py" in text
    assert source(bucket, docstring=True).data.count("\n") > text.count("\n")


def test_several_targets_by_dotted_path_including_methods():
    text = source(
        "mlinfra_kit.serving.store.SQLiteStore.put_many",
        "mlinfra_kit.processing.features.StreamFeatures._evict",
    ).data
    assert text.count("```python") == 2
    assert "ON CONFLICT" in text and "def _evict" in text


@pytest.mark.parametrize(
    "target", ["no_such_package.thing", "mlinfra_kit.online_testing.router.no_such_function"]
)
def test_a_wrong_name_says_what_to_give(target):
    with pytest.raises(ValueError, match="dotted path|has no attribute 'no_such_function'"):
        source(target)
