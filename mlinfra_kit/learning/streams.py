"""Streams to learn from: labelled samples in arrival order, with known drift points.

A :class:`Stream` is materialised (a list), so every strategy sees exactly the same
samples in the same order, and a notebook can say where the drifts are.

Examples
--------
>>> s = drift_stream(n=1000, drifts=(400,), seed=1)
>>> len(s), s.drifts, sorted(s[0][0])[:3]
(1000, (400,), ['age', 'car', 'commission'])
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Stream", "drift_stream", "from_samples", "projects_stream", "river_dataset"]


@dataclass(frozen=True)
class Stream:
    """Samples ``(x, y)`` in arrival order; ``drifts`` are the known change points."""

    name: str
    samples: tuple[tuple[Any, Any], ...]
    drifts: tuple[int, ...] = ()
    description: str = ""

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.samples[index]

    def head(self, n: int) -> Stream:
        return Stream(
            self.name, self.samples[:n], tuple(d for d in self.drifts if d < n), self.description
        )


def from_samples(
    samples: Sequence[tuple[Any, Any]],
    name: str = "stream",
    drifts: Sequence[int] = (),
    description: str = "",
) -> Stream:
    """A stream of your own ``(x, y)`` pairs, checked: not empty, every label present,
    every ``x`` of the same kind (all dicts with the same keys, or all strings)."""
    samples = tuple((x, y) for x, y in samples)
    if not samples:
        raise ValueError(f"stream {name!r} is empty: give at least one (x, y) sample")
    missing = [i for i, (_, y) in enumerate(samples) if y is None]
    if missing:
        raise ValueError(
            f"stream {name!r} has samples without a label, first at index "
            f"{missing[0]}; drop them or label them"
        )
    first = samples[0][0]
    if isinstance(first, dict):
        keys = set(first)
        for i, (x, _) in enumerate(samples):
            if not isinstance(x, dict) or set(x) != keys:
                got = sorted(x) if isinstance(x, dict) else type(x).__name__
                raise ValueError(
                    f"stream {name!r}: sample {i} has features {got}, "
                    f"sample 0 has {sorted(keys)}; every sample needs the same"
                )
    elif isinstance(first, str):
        bad = [i for i, (x, _) in enumerate(samples) if not isinstance(x, str)]
        if bad:
            raise ValueError(f"stream {name!r}: sample {bad[0]} is not text like sample 0")
    else:
        raise ValueError(
            f"stream {name!r}: x must be a dict of features or a text, got {type(first).__name__}"
        )
    bad = [d for d in drifts if not 0 < d < len(samples)]
    if bad:
        raise ValueError(f"drift position {bad[0]} is outside the stream (0, {len(samples)})")
    return Stream(name, samples, tuple(sorted(drifts)), description)


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, v))))


def drift_stream(
    n: int = 10_000,
    drifts: Sequence[int] = (5_000,),
    width: int = 1,
    functions: Sequence[int] = (0, 2, 4),
    seed: int = 0,
) -> Stream:
    """River's Agrawal loan-approval generator whose labelling rule changes at ``drifts``.

    ``width=1`` makes each change abrupt; a larger width blends the old and new rule over
    that many samples (gradual drift). ``functions`` are Agrawal's rules, one per concept.
    """
    from river.datasets import synth

    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    if list(drifts) != sorted(drifts):
        raise ValueError(f"drifts must be in increasing order, got {list(drifts)}")
    if len(functions) < len(drifts) + 1:
        raise ValueError(
            f"{len(drifts)} drift(s) need {len(drifts) + 1} functions, got {len(functions)}"
        )
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    concepts = [
        iter(synth.Agrawal(classification_function=f, seed=seed + i))
        for i, f in enumerate(functions[: len(drifts) + 1])
    ]
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        # The concept in force: one more for each drift whose sigmoid the coin passes.
        # (River's ConceptDriftStream does this too, but overflows for abrupt drifts.)
        active = sum(
            rng.random()
            < (float(i >= position) if width == 1 else _sigmoid(4.0 * (i - position) / width))
            for position in drifts
        )
        samples.append(next(concepts[active]))
    kind = "abrupt" if width == 1 else f"gradual (width {width})"
    return from_samples(
        samples,
        name=f"agrawal-{kind.split()[0]}",
        drifts=drifts,
        description=f"Agrawal rules {list(functions[: len(drifts) + 1])}, {kind} drift at "
        f"{list(drifts)}",
    )


def river_dataset(name: str, n: int | None = None) -> Stream:
    """A real dataset that River ships inside the package (read offline):
    ``"phishing"`` (1,250 web pages) or ``"bananas"`` (5,300 points)."""
    from river import datasets

    known = {"phishing": datasets.Phishing, "bananas": datasets.Bananas}
    if name not in known:
        raise ValueError(f"unknown dataset {name!r}: choose one of {sorted(known)}")
    data = known[name]()
    samples = list(itertools.islice(data, n))
    return from_samples(samples, name=name, description=data.__doc__.strip().splitlines()[0])


def projects_stream(projects: Any = None) -> Stream:
    """The tag-prediction projects in ``created_on`` order: text in, tag out. The topic
    mix drifts with time, without a single known change point."""
    from mlinfra_kit.data import load_projects

    projects = load_projects() if projects is None else projects
    ordered = projects.sorted_by_time()
    return from_samples(
        [(p.text, p.tag) for p in ordered],
        name="projects",
        description=f"{len(ordered)} projects by created_on ({ordered.source})",
    )
