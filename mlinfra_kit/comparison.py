"""Comparisons that survive a rerun: two variants measured interleaved, an interval, a noise
floor, and a verdict with three outcomes.
(Over 450 lines: the comparison, its verdict and hint, and the three ways one is made, in
rounds, from paired samples or by a bootstrap, share one set of rules.)

One measurement of A and one of B cannot say "B is faster": on a shared machine the same
setting measured twice can differ by more than the effect. :func:`compare` measures the two
variants in rounds, in alternating order (A B, B A, A B, ...) after warm-ups, so a drift of
the machine hits both alike; each round gives one paired ratio (or difference). It repeats
until the 99 % interval of the ratio is narrow enough, the verdict is clear, or the time
budget is spent, and reports

- the **estimate** (the geometric mean of the per-round ratios, or the mean difference),
- its 99 % **interval** (Student's t over the rounds, on the log of the ratios),
- the **noise floor**: how much the same variant differs from itself between consecutive
  rounds (A against A and B against B: the median of ``|log(A_i+1 / A_i)|`` over both),
  never below 1 % for a ratio;
- the rounds used and the seconds spent.

The interval is a 99 % one because it is looked at after every round and the rounds stop
once it is clear: each look is one more chance of a false call. An interval computed once
over a fixed set of items (:func:`accuracy_difference`, a bootstrap) is a 95 % one.

:meth:`Comparison.verdict` then decides a claim: **held** when the whole interval lies beyond
the threshold and the estimate clears it by more than the noise floor, **not held** when both
lie as clearly on the other side, **inconclusive** otherwise (on this machine, or on this
data: what would settle it is said). An A/A comparison is rarely "held" (about 1 % of seeds
in simulation). The orientation is always "how much better B is than A": ``b / a`` for a
quantity where higher is better (throughput, accuracy), ``a / b`` where lower is better
(latency, seconds).

Anchors: pyperf (warm-ups, spread over runs), Criterion.rs (intervals, a noise threshold
below which a change is not called), Triton's perf_analyzer (repeat until stable).

Examples
--------
Paired samples already measured (per fold, per seed):

>>> c = paired([100, 102, 98, 101], [131, 133, 126, 130], names=("A", "B"))
>>> round(c.estimate, 2), c.repeats
(1.3, 4)
>>> c.verdict(at_least=1.1)
'held'
>>> paired([1.0, 1.02, 0.98], [1.01, 0.99, 1.0]).verdict(at_least=1.0)
'inconclusive'

Measured here, interleaved, until the interval is 10 % wide or 2 s are spent:

>>> import time
>>> fast = lambda: time.sleep(0.001)
>>> c = compare(lambda: timed(fast), lambda: timed(fast), lower_is_better=True,
...             min_rounds=3, max_rounds=5, budget_s=2)
>>> c.verdict(at_least=1.05) in ("not_held", "inconclusive")
True
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "OUTCOMES",
    "ROUNDS_CAP_VARIABLE",
    "Comparison",
    "accuracy_difference",
    "bootstrap_difference",
    "combined",
    "compare",
    "paired",
    "rounds_cap",
    "timed",
]

#: An environment variable capping every comparison's rounds (``mlinfra run --max-rounds``,
#: the notebook tests): a run that checks the notebooks work, not what they conclude.
ROUNDS_CAP_VARIABLE = "MLINFRA_MAX_ROUNDS"

#: The three outcomes of a claim.
OUTCOMES = ("held", "not_held", "inconclusive")
#: Below this relative difference no change is called, however many rounds (Criterion's 1 %).
MIN_NOISE = 0.01


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (``time.perf_counter``): a measurement for
    :func:`compare` when the variants are functions to time."""
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


@dataclass(frozen=True)
class Comparison:
    """B against A, measured in paired rounds.

    ``kind`` is ``"ratio"`` (estimate and interval are how many times better B is than A)
    or ``"difference"`` (how much better, in the measurement's unit). ``noise`` is the noise
    floor in the same terms: a relative change (0.05 = 5 %) for a ratio, an absolute one
    for a difference."""

    names: tuple[str, str]
    kind: str
    estimate: float
    interval: tuple[float, float]
    noise: float
    repeats: int
    seconds: float = 0.0
    confidence: float = 0.99
    #: For a bootstrap (:func:`bootstrap_difference`): the items resampled; 0 for rounds.
    items: int = 0
    #: What one paired measurement is, as :meth:`describe` names it: rounds in turns,
    #: or seeds, folds, streams.
    over: str = "rounds"
    samples_a: tuple[float, ...] = field(default=(), repr=False)
    samples_b: tuple[float, ...] = field(default=(), repr=False)
    #: Whether the measurements are better lower (times), so B's ratio is A over B.
    lower_is_better: bool = False

    def medians_ratio(self) -> float | None:
        """For a ratio: how many times better B's median measurement is than A's (the
        ratio of the two medians a table shows); None without the measurements. It can
        differ from :attr:`estimate`, the geometric mean of each round's own ratio, when
        the rounds vary.

        >>> paired([2.0, 2.0, 9.0], [1.0, 3.0, 1.0], lower_is_better=True).medians_ratio()
        2.0
        """
        if self.kind != "ratio" or not self.samples_a:
            return None
        a, b = statistics.median(self.samples_a), statistics.median(self.samples_b)
        return a / b if self.lower_is_better else b / a

    @property
    def _neutral(self) -> float:
        return 1.0 if self.kind == "ratio" else 0.0

    def _beyond_noise(self) -> bool:
        if self.kind == "ratio":
            return abs(math.log(self.estimate)) > math.log1p(self.noise)
        return abs(self.estimate) > self.noise

    def _clears(self, value: float, threshold: float, above: bool) -> bool:
        """Whether ``value`` lies beyond ``threshold`` by more than the noise floor."""
        if self.kind == "ratio":
            band = 1 + self.noise
            return value > threshold * band if above else value < threshold / band
        return value > threshold + self.noise if above else value < threshold - self.noise

    def verdict(self, at_least: float | None = None, within: float | None = None) -> str:
        """The outcome of a claim about B against A: ``held``, ``not_held`` or
        ``inconclusive``. A side is taken only when the whole interval lies on it and the
        estimate lies beyond the threshold by more than the noise floor: a difference the
        same variant shows against itself is never called.

        ``at_least=t``: "B is better than A by at least ``t``" (a ratio such as 1.0 or 1.2,
        or a difference such as 0.0).

        ``within=t``: "B is about as good as A": held when the whole interval lies within
        ``t`` of no change (``[1/t, t]`` for a ratio, ``[-t, t]`` for a difference); not
        held when it lies outside."""
        if (at_least is None) == (within is None):
            raise ValueError("give one of at_least= (B better by at least) or within= (B about A)")
        lo, hi = self.interval
        if at_least is not None:
            if lo > at_least and self._clears(self.estimate, at_least, above=True):
                return "held"
            if hi < at_least and self._clears(self.estimate, at_least, above=False):
                return "not_held"
            return "inconclusive"
        assert within is not None
        if self.kind == "ratio":
            if within < 1:
                raise ValueError(f"within= is a ratio of 1 or more for a ratio, got {within}")
            low, high = 1 / within, within
        else:
            if within < 0:
                raise ValueError(f"within= is a non-negative difference, got {within}")
            low, high = -within, within
        if low <= lo and hi <= high:
            return "held"
        below = hi < low and self._clears(self.estimate, low, above=False)
        if below or (lo > high and self._clears(self.estimate, high, above=True)):
            return "not_held"
        return "inconclusive"

    def threshold(self, at_least: float | None = None, within: float | None = None) -> float:
        """The threshold a verdict was decided against (for the lesson's record)."""
        if at_least is not None:
            return float(at_least)
        if within is None:
            raise ValueError("give one of at_least= or within=")
        return float(within)

    def describe(self, unit: str = "", at_least: float | None = None) -> str:
        """The estimate with its interval, the noise floor and the rounds, as a learner
        reads them: ``1.26x [1.10, 1.41] (noise floor ±4 %, 6 rounds)``. ``at_least``: the
        claim's threshold, which a bound is printed precisely enough to be told from."""
        lo, hi = self.interval
        note = ""
        if self.kind == "ratio":
            # a bound that rounds to 1.00 (no change) or to the threshold gets a third
            # decimal: it says on which side the interval ends (1.00 reads as touching it)
            marks = {"1.00"} | ({f"{at_least:.2f}"} if at_least is not None else set())
            d = 3 if {f"{lo:.2f}", f"{hi:.2f}"} & marks else 2
            text = f"{self.estimate:.2f}x [{lo:.{d}f}, {hi:.{d}f}]"
            if hi < 1:  # surely below 1: read the other way round, how many times worse B is
                # from the estimate as printed, so a reader's 1 / 0.96 gives the same 1.04x
                shown = max(round(self.estimate, 2), 0.01)
                text += f", i.e. {self.names[1]} {1 / shown:.2f}x worse"
            noise = f"±{100 * self.noise:.0f} %"
            medians = self.medians_ratio()
            if medians is not None and not lo <= medians <= hi:  # the summaries disagree
                note = (
                    f"; the ratio of the two sides' medians, {medians:.2f}x, lies outside the "
                    "interval: the machine's speed moved between rounds, which each round's "
                    "own ratio cancels and the medians do not"
                )
        else:
            text = f"{self.estimate:+.3g}{unit} [{lo:+.3g}, {hi:+.3g}]"
            noise = f"±{self.noise:.2g}{unit}"
        level = f"{100 * self.confidence:.0f} %"
        if self.items:
            return f"{text} ({level} bootstrap interval over {self.items} items)"
        return f"{text} ({level} interval; noise floor {noise}, {self.repeats} {self.over}){note}"

    def settle_hint(self, at_least: float | None = None, within: float | None = None) -> str:
        """What would settle an inconclusive verdict. Given the claim's threshold (as for
        :meth:`verdict`), an estimate beyond it by more than the noise waits only for a
        narrower interval; without one, the estimate is read against no change."""
        if within is not None:
            at = [1 / within, within] if self.kind == "ratio" else [-within, within]
        else:
            at = [] if at_least is None else [at_least]
        clear = [
            self._clears(self.estimate, t, True) or self._clears(self.estimate, t, False)
            for t in at
        ]
        near = not all(clear) if at else not self._beyond_noise()
        if near:
            what = "the estimate is within" if at else "the effect is within"
            of = " of the claim's threshold" if at else ""
            return (
                f"{what} this machine's run-to-run noise{of}: measure on an idle "
                "machine, or with larger sizes (a full run, after a quick one)"
            )
        return (
            "the interval still reaches across the threshold: more rounds (a full run makes "
            "more than a quick one) or a quieter machine would narrow it"
        )


def combined(outcomes: Sequence[str]) -> str:
    """The outcome of a claim made of several (``every peer is slower``): held when each
    held, not held when any did not, inconclusive otherwise.

    >>> combined(["held", "held"]), combined(["held", "inconclusive"])
    ('held', 'inconclusive')
    >>> combined(["not_held", "inconclusive"])
    'not_held'
    """
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown or not outcomes:
        raise ValueError(f"need one or more outcomes among {OUTCOMES}, got {list(outcomes)}")
    if "not_held" in outcomes:
        return "not_held"
    return "held" if all(o == "held" for o in outcomes) else "inconclusive"


def _t_interval(values: Sequence[float], confidence: float) -> tuple[float, float, float]:
    """Mean and Student's t interval of ``values`` (the rounds' log ratios or differences)."""
    from scipy import stats

    n = len(values)
    center = statistics.fmean(values)
    if n < 2:
        return center, -math.inf, math.inf
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return center, center - half, center + half


def _noise_floor(a: Sequence[float], b: Sequence[float], kind: str) -> float:
    """Each variant against itself: the median change between its consecutive rounds, over
    both variants (each measured the same setting again, so any change is noise)."""
    pairs = [(x, y) for series in (a, b) for x, y in zip(series, series[1:], strict=False)]
    if not pairs:
        return MIN_NOISE if kind == "ratio" else 0.0
    if kind == "ratio":
        steps = [abs(math.log(y / x)) for x, y in pairs]
        return max(MIN_NOISE, math.expm1(statistics.median(steps)))
    return statistics.median(abs(y - x) for x, y in pairs)


def _check_kind(kind: str) -> None:
    if kind not in ("ratio", "difference"):
        raise ValueError(f"kind must be 'ratio' or 'difference', got {kind!r}")


def paired(
    a: Sequence[float],
    b: Sequence[float],
    names: tuple[str, str] = ("A", "B"),
    kind: str = "ratio",
    lower_is_better: bool = False,
    seconds: float = 0.0,
    confidence: float = 0.99,
    noise: float | None = None,
    over: str = "rounds",
) -> Comparison:
    """A :class:`Comparison` of paired measurements already taken (round ``i`` of A with
    round ``i`` of B: the same fold, seed or repeat). Ratios need positive values.

    ``noise``: what one variant shows against itself, when it is known otherwise (a model
    retrained with another seed, for a score); by default the median change between
    consecutive measurements of each variant (for timings taken in turns). ``over``: what
    a pair is, as the description names it.

    >>> paired([3, 3, 4], [1, 2, 1], kind="difference", lower_is_better=True, noise=0.0,
    ...        over="streams").describe()
    '+2 [-3.73, +7.73] (99 % interval; noise floor ±0, 3 streams)'
    """
    _check_kind(kind)
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or not a:
        raise ValueError(
            f"paired needs as many B as A measurements, at least one: {len(a)}, {len(b)}"
        )
    if any(not math.isfinite(v) for v in a + b):
        raise ValueError("measurements must be finite numbers")
    if kind == "ratio":
        if any(v <= 0 for v in a + b):
            raise ValueError("a ratio needs positive measurements (times, rates, sizes)")
        logs = [
            math.log(x / y) if lower_is_better else math.log(y / x)
            for x, y in zip(a, b, strict=True)
        ]
        center, lo, hi = _t_interval(logs, confidence)
        estimate, interval = math.exp(center), (math.exp(lo), math.exp(hi))
    else:
        diffs = [x - y if lower_is_better else y - x for x, y in zip(a, b, strict=True)]
        estimate, lo, hi = _t_interval(diffs, confidence)
        interval = (lo, hi)
    return Comparison(
        names=names,
        kind=kind,
        estimate=estimate,
        interval=interval,
        noise=_noise_floor(a, b, kind) if noise is None else float(noise),
        repeats=len(a),
        seconds=seconds,
        confidence=confidence,
        samples_a=tuple(a),
        samples_b=tuple(b),
        over=over,
        lower_is_better=lower_is_better,
    )


def rounds_cap() -> int | None:
    """The most rounds any :func:`compare` may take in this process: the variable
    ``MLINFRA_MAX_ROUNDS`` (2 or more), or None when it is not set. A capped run's verdicts
    rest on fewer rounds, so more of them are inconclusive; :func:`mlinfra_kit.measure.environment`
    records the cap beside the numbers.

    >>> import os
    >>> os.environ["MLINFRA_MAX_ROUNDS"] = "2"; rounds_cap()
    2
    >>> del os.environ["MLINFRA_MAX_ROUNDS"]; rounds_cap() is None
    True
    """
    value = os.environ.get(ROUNDS_CAP_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 2:
        raise ValueError(
            f"{ROUNDS_CAP_VARIABLE} must be a whole number of rounds, 2 or more; got {value!r}"
        )
    return int(value)


def compare(
    measure_a: Callable[[], float],
    measure_b: Callable[[], float],
    names: tuple[str, str] = ("A", "B"),
    kind: str = "ratio",
    lower_is_better: bool = False,
    warmup: int = 1,
    min_rounds: int = 3,
    max_rounds: int = 12,
    budget_s: float = 30.0,
    rel_width: float = 0.10,
    at_least: float | None = None,
    progress: Callable[[int], None] | None = None,
    until: Callable[[], bool] | None = None,
    within: float | None = None,
) -> Comparison:
    """Measure A and B interleaved (A B, B A, A B, ...) after ``warmup`` untimed calls of
    each, round after round, and compare them (:func:`paired`).

    Each ``measure_*`` returns one number: a throughput, a duration (:func:`timed`), an
    accuracy. Rounds continue from ``min_rounds`` until the interval is narrower than
    ``rel_width`` (relative, for a ratio) or, when ``at_least`` is given, until the claim
    "B is better by at least ``at_least``" is settled (:meth:`Comparison.verdict` is held
    or not held: a narrow interval that still straddles the threshold is not a reason to
    stop), and ``within`` likewise for "B is about A"; they stop at ``max_rounds`` or once
    ``budget_s`` seconds are spent, whatever the interval (the verdict is then inconclusive
    where it is not settled). ``until``:
    another condition the rounds must also meet before they stop early (another claim
    read from the same measurements, settled too). :func:`rounds_cap` lowers
    ``max_rounds`` (and ``min_rounds`` with it) for a run that only checks that things work."""
    _check_kind(kind)
    if (cap := rounds_cap()) is not None:
        max_rounds = min(max_rounds, cap)
        min_rounds = min(min_rounds, max_rounds)
    if min_rounds < 2 or max_rounds < min_rounds:
        raise ValueError(f"need 2 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    if budget_s <= 0 or warmup < 0:
        raise ValueError("budget_s must be positive and warmup 0 or more")
    if at_least is not None and within is not None:
        raise ValueError("give at most one claim to settle: at_least= or within=")
    tic = time.perf_counter()
    for _ in range(warmup):
        measure_a()
        measure_b()
    a: list[float] = []
    b: list[float] = []
    result = None
    for i in range(max_rounds):
        if i % 2 == 0:
            a.append(measure_a())
            b.append(measure_b())
        else:
            b.append(measure_b())
            a.append(measure_a())
        if progress is not None:
            progress(i + 1)
        if i + 1 < min_rounds:
            continue
        result = paired(a, b, names, kind, lower_is_better, time.perf_counter() - tic)
        if at_least is not None or within is not None:
            done = result.verdict(at_least=at_least, within=within) != "inconclusive"
        else:
            lo, hi = result.interval
            done = (hi / lo - 1 if kind == "ratio" else hi - lo) <= rel_width
        if done and until is not None:
            done = until()
        if done or result.seconds >= budget_s:
            break
    assert result is not None
    return result


def bootstrap_difference(
    items: int,
    score: Callable[[Sequence[int]], tuple[float, float]],
    names: tuple[str, str] = ("A", "B"),
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """How much better B scores than A on one evaluation set of ``items`` items, with a
    percentile bootstrap interval over them: ``score(indices) -> (a, b)`` scores both on
    the same resampled items (paired). A fixed figure for A (a published score) is a
    constant ``a``. The noise floor is 0: the interval is the bootstrap's own spread.

    >>> right_a = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 20
    >>> right_b = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1] * 20
    >>> mean = lambda v, idx: sum(v[i] for i in idx) / len(idx)
    >>> c = bootstrap_difference(200, lambda idx: (mean(right_a, idx), mean(right_b, idx)))
    >>> round(c.estimate, 2), c.verdict(at_least=0.0)
    (0.2, 'held')
    """
    import numpy as np

    if items < 1:
        raise ValueError(f"bootstrap_difference needs at least one evaluation item, got {items}")
    if resamples < 100:
        raise ValueError(f"resamples must be 100 or more, got {resamples}")
    rng = np.random.default_rng(seed)
    a0, b0 = score(np.arange(items).tolist())
    diffs = []
    for _ in range(resamples):
        a_value, b_value = score(rng.integers(0, items, items).tolist())
        diffs.append(b_value - a_value)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    return Comparison(
        names=names,
        kind="difference",
        estimate=float(b0 - a0),
        interval=(float(lo), float(hi)),
        noise=0.0,
        repeats=resamples,
        confidence=confidence,
        items=items,
    )


def accuracy_difference(
    right_a: Sequence[bool],
    right_b: Sequence[bool],
    names: tuple[str, str] = ("A", "B"),
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """How much more often B is right than A on the same items (``right_*[i]``: whether
    each got item ``i`` right), with a 95 % bootstrap interval over the items
    (:func:`bootstrap_difference`, paired: each resample scores both on the same items).

    >>> a = [True, False] * 100                 # right half the time
    >>> b = [True, True, True, False] * 50      # right three times in four
    >>> c = accuracy_difference(a, b, names=("old", "new"))
    >>> round(c.estimate, 2), c.verdict(at_least=0.1)
    (0.25, 'held')
    """
    import numpy as np

    if len(right_a) != len(right_b):
        raise ValueError(
            f"A was scored on {len(right_a)} items and B on {len(right_b)}: "
            "compare them on the same items"
        )
    a, b = np.asarray(right_a, dtype=float), np.asarray(right_b, dtype=float)

    def both(idx: Sequence[int]) -> tuple[float, float]:
        picked = np.asarray(idx)
        return float(a[picked].mean()), float(b[picked].mean())

    return bootstrap_difference(len(a), both, names=names, resamples=resamples, seed=seed)
