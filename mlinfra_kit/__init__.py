"""mlinfra-kit: run and measure the infrastructure patterns of ML systems.

The package is a set of small modules, one per concern, over a common core:

- ``mlinfra_kit.data``: the running example (ML projects to tag) and its loaders;
- ``mlinfra_kit.models``: the baseline tag classifier (PyTorch);
- ``mlinfra_kit.measure``, ``.results``, ``.device``, ``.plots``: measuring, recording,
  choosing a device and plotting;
- ``mlinfra_kit.runner`` and ``.report``: executing notebooks and summarising their results.

Importing this package is cheap on purpose (no torch, no matplotlib): the command line
starts instantly and each notebook imports only what it uses.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
