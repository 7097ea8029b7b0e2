"""Progress bars follow the notebook's INTERACTIVE switch and MLINFRA_PROGRESS."""

from mlinfra_kit import progress


def test_bars_are_off_when_disabled_and_on_again(monkeypatch):
    try:
        progress.enable(False)
        assert progress.bar(range(2)).disable
        progress.enable(True)
        assert not progress.bar(range(2)).disable
        assert progress.bar(range(2), show=False).disable
        monkeypatch.setenv("MLINFRA_PROGRESS", "0")
        assert not progress.enabled() and progress.bar(range(2)).disable
    finally:
        progress.enable(True)
