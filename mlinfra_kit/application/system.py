"""The application end to end: serve, stream, monitor, retrain, shadow, canary, promote.

Version 1 serves from a real server process. New projects arrive in ``created_on`` order;
each is sent to the production server, and its true tag arrives ``label_delay`` projects
later. Every ``window`` projects the :class:`Monitor` compares inputs, outputs and (labelled)
quality with v1's validation data. The first alert triggers a retrain on everything
labelled so far; the candidate (v2) is mirrored in a shadow phase, then rolled out as a
canary whose decisions wait for the labels; it is promoted, or rolled back while v1 keeps
serving.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlinfra_kit.application.monitoring import Monitor, WindowReport
from mlinfra_kit.application.registry import ModelRegistry
from mlinfra_kit.application.sources import project_source
from mlinfra_kit.data import TAGS
from mlinfra_kit.data.projects import Project, Projects, train_val_split
from mlinfra_kit.models import TagClassifier, evaluate
from mlinfra_kit.models.evaluation import Evaluation
from mlinfra_kit.online_testing.canary import Canary, Guardrails, Observation
from mlinfra_kit.online_testing.shadow import ShadowReport, run_shadow


@dataclass
class Trained:
    """A model with its validation split's answers and its answers on all the data it
    was trained from: the monitor's references for inputs and for the output mix."""

    model: TagClassifier
    evaluation: Evaluation
    val_texts: list[str]
    val_predictions: list[str]
    train_size: int
    all_predictions: list[str]


def train(rows: Sequence[Project], epochs: int = 10, seed: int = 0) -> Trained:
    """Train a tag classifier on ``rows`` (a stratified 20 % held out for validation)."""
    rows = [r for r in rows if r.tag in TAGS and r.text]
    if len(rows) < 20:
        raise ValueError(f"need at least 20 labelled projects to train, got {len(rows)}")
    fit_part, val_part = train_val_split(Projects(tuple(rows), "application"), 0.2, seed=seed)
    model = TagClassifier(epochs=epochs, seed=seed, progress=False, device="cpu")
    model.fit(fit_part.texts, fit_part.tags, val_part.texts, val_part.tags)
    predicted = [p.tag for p in model.predict(val_part.texts)]
    everything = [p.tag for p in model.predict([r.text for r in rows])]
    return Trained(
        model,
        evaluate(val_part.tags, predicted, TAGS),
        list(val_part.texts),
        predicted,
        len(fit_part.rows),
        everything,
    )


@dataclass(frozen=True)
class AppConfig:
    """The application's knobs (the notebook's parameters map onto them)."""

    window: int = 50
    label_delay: int = 10
    shadow_requests: int = 30
    canary_steps: tuple[float, ...] = (0.5, 1.0)
    canary_min_requests: int = 15
    guardrails: Guardrails = field(
        default_factory=lambda: Guardrails(max_p99_ratio=3.0, max_quality_drop=0.05)
    )
    alpha: float = 0.001
    max_f1_drop: float = 0.10
    quantize: str | None = None
    epochs: int = 10
    seed: int = 0

    def __post_init__(self):
        if self.window < 10 or self.label_delay < 0 or self.shadow_requests < 1:
            raise ValueError("need window >= 10, label_delay >= 0 and shadow_requests >= 1")


@dataclass(frozen=True)
class Served:
    """One stream project as the application handled it."""

    index: int
    project_id: int
    created_on: str
    phase: str
    version: str
    status: int
    predicted: str | None
    tag: str
    latency_ms: float


@dataclass
class ApplicationRun:
    served: list[Served] = field(default_factory=list)
    windows: list[WindowReport] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "no_retrain"
    retrain_at: int | None = None
    candidate: str | None = None
    candidate_trained: Trained | None = None
    shadow: ShadowReport | None = None
    canary: Canary | None = None
    rejected_labels: int = 0

    @property
    def rejected_requests(self) -> int:
        return sum(s.status == 422 for s in self.served)

    @property
    def failed_requests(self) -> int:
        return sum(s.status not in (200, 422) for s in self.served)

    @property
    def served_p99_ms(self) -> float:
        from mlinfra_kit.measure import latency_stats

        ok = [s.latency_ms / 1000 for s in self.served if s.status == 200]
        return latency_stats(ok).p99_ms if ok else float("nan")

    def event(self, index: int, kind: str, detail: str) -> None:
        self.events.append({"index": index, "kind": kind, "detail": detail})


def _body(project: Project) -> dict[str, str]:
    return {"title": project.title, "description": project.description}


class _Servers:
    """Real server processes per version, with a keep-alive client each."""

    def __init__(self, registry: ModelRegistry, quantize: str | None, stack: contextlib.ExitStack):
        self.registry, self.quantize, self.stack = registry, quantize, stack
        self.urls: dict[str, str] = {}
        self.clients: dict[str, Any] = {}

    def start(self, version: str) -> str:
        import httpx

        from mlinfra_kit.serving.process import run_server

        server = self.stack.enter_context(
            run_server(self.registry.path(version), quantize=self.quantize)
        )
        self.urls[version] = server.url
        self.clients[version] = self.stack.enter_context(httpx.Client(timeout=30))
        return server.url

    def send(self, version: str, project: Project) -> tuple[int, str | None, float]:
        tic = time.perf_counter()
        response = self.clients[version].post(self.urls[version] + "/predict", json=_body(project))
        latency = 1000 * (time.perf_counter() - tic)
        tag = response.json().get("tag") if response.status_code == 200 else None
        return response.status_code, tag, latency


def run_application(
    registry: ModelRegistry,
    v1: Trained,
    train_rows: Sequence[Project],
    stream: Sequence[Project],
    config: AppConfig = AppConfig(),
    retrain: Callable[[Sequence[Project]], Trained] | None = None,
    redis_url: str | None = None,
    progress: bool = True,
) -> ApplicationRun:
    """Run the whole system over ``stream`` with ``registry.production`` serving first.

    ``retrain(rows)`` builds the candidate (default: :func:`train` with the config's epochs
    and seed); pass another to rehearse a bad candidate. With ``redis_url``, the projects
    travel through a Redis Stream (consumer group, acknowledged once handled).
    """
    from tqdm.auto import tqdm

    baseline = registry.production
    if baseline is None:
        raise ValueError("the registry has no production version: register and promote v1")
    retrain = retrain or (lambda rows: train(rows, config.epochs, config.seed))
    run = ApplicationRun()
    monitor = _monitor(v1, config)
    production = baseline
    labelled: list[Project] = []  # stream projects whose label has arrived
    labelled_ids: set[int] = set()
    window: list[tuple[Project, str]] = []  # (project, predicted) in the current window
    label_queue: deque[tuple[int, Project]] = deque()
    pending: deque[tuple[int, str, Observation]] = deque()  # canary observations awaiting labels
    phase = "serving"
    shadow_left = 0
    with contextlib.ExitStack() as stack:
        servers = _Servers(registry, config.quantize, stack)
        servers.start(baseline)
        items = iter(
            enumerate(
                tqdm(
                    project_source(stream, redis_url),
                    total=len(stream),
                    desc="stream",
                    disable=not progress,
                )
            )
        )
        for index, project in items:
            # Labels that have arrived by now.
            while label_queue and label_queue[0][0] <= index:
                _, done = label_queue.popleft()
                if done.tag in TAGS:
                    labelled.append(done)
                    labelled_ids.add(done.id)
                else:
                    run.rejected_labels += 1
            label_queue.append((index + config.label_delay, project))
            if phase == "shadow":
                batch = [project] + [p for _, p in _take(items, shadow_left - 1)]
                run.shadow = run_shadow(
                    servers.urls[production], [_body(p) for p in batch], servers.urls[run.candidate]
                )
                for offset, (p, answer, ms) in enumerate(
                    zip(batch, run.shadow.responses, run.shadow.primary_latencies_ms, strict=True)
                ):
                    status = 200 if "tag" in answer else 422
                    run.served.append(
                        Served(
                            index + offset,
                            p.id,
                            p.created_on.isoformat(),
                            "shadow",
                            production,
                            status,
                            answer.get("tag"),
                            p.tag,
                            ms,
                        )
                    )
                    if offset:
                        label_queue.append((index + offset + config.label_delay, p))
                    if status == 200:
                        window.append((p, answer["tag"]))
                shadow = run.shadow
                run.event(
                    index + len(batch) - 1,
                    "shadow",
                    f"{shadow.compared} mirrored, agreement {shadow.agreement:.2f}, "
                    f"{shadow.candidate_errors} candidate errors",
                )
                if shadow.candidate_errors:
                    run.outcome, phase = "rolled_back", "serving"
                    run.event(index + len(batch) - 1, "rollback", "candidate failed in shadow")
                else:
                    phase = "canary"
                    run.canary = Canary(
                        config.canary_steps,
                        config.canary_min_requests,
                        config.guardrails,
                        baseline=production,
                        candidate=run.candidate,
                    )
                    run.event(
                        index + len(batch) - 1, "canary", f"canary starts at {run.canary.share:.0%}"
                    )
                continue
            version = production
            if phase == "canary":
                version = run.canary.route(project.id)
            status, predicted, ms = servers.send(version, project)
            run.served.append(
                Served(
                    index,
                    project.id,
                    project.created_on.isoformat(),
                    phase,
                    version,
                    status,
                    predicted,
                    project.tag,
                    ms,
                )
            )
            if phase == "canary":
                quality = None if predicted is None else float(predicted == project.tag)
                pending.append(
                    (
                        index + config.label_delay,
                        project.id,
                        Observation(version, ms, status not in (200, 422), quality),
                    )
                )
                phase, production = _advance_canary(run, pending, index, production, registry)
                if run.outcome == "promoted":  # watch v2 against its own validation data
                    monitor = _monitor(run.candidate_trained, config)
            if status == 200:
                window.append((project, predicted))
            if len(window) >= config.window:
                report = monitor.check(
                    [p.text for p, _ in window],
                    [t for _, t in window],
                    [p.tag if p.id in labelled_ids else None for p, _ in window],
                    window=len(run.windows),
                )
                run.windows.append(report)
                window = []
                for alert in report.alerts:
                    run.event(index, "alert", str(alert))
                if report.alerts and run.retrain_at is None and phase == "serving":
                    trained = retrain([*train_rows, *labelled])
                    run.retrain_at, run.candidate_trained = index, trained
                    run.candidate = registry.register(
                        trained.model,
                        trained.evaluation.metrics(),
                        notes=f"retrained at stream index {index} on "
                        f"{len(train_rows) + len(labelled)} projects",
                    )
                    run.event(
                        index,
                        "retrain",
                        f"{run.candidate}: validation macro F1 {trained.evaluation.macro_f1:.3f}",
                    )
                    servers.start(run.candidate)
                    phase, shadow_left = "shadow", config.shadow_requests
        if phase == "canary":  # the stream ended first: decide on what was seen
            run.outcome = "undecided"
            run.event(len(stream) - 1, "canary", "stream ended before the canary decided")
    return run


def _advance_canary(
    run: ApplicationRun, pending: deque, index: int, production: str, registry: ModelRegistry
) -> tuple[str, str]:
    """Feed the canary the observations whose labels have arrived; act on its decision."""
    canary = run.canary
    while pending and pending[0][0] <= index and canary.status == "running":
        _, user, observation = pending.popleft()
        before = len(canary.decisions)
        canary.observe(user, observation)
        for decision in canary.decisions[before:]:
            run.event(index, "canary", f"{decision['decision']} (share {canary.share:.0%})")
    if canary.status == "completed":
        registry.promote(run.candidate)
        run.outcome = "promoted"
        run.event(index, "promote", f"{run.candidate} in production")
        return "serving", run.candidate
    if canary.status == "rolled_back":
        run.outcome = "rolled_back"
        run.event(index, "rollback", canary.reason)
        return "serving", production
    return "canary", production


def _monitor(trained: Trained, config: AppConfig) -> Monitor:
    return Monitor(
        trained.val_texts,
        trained.val_predictions,
        trained.model.vocab_,
        TAGS,
        reference_macro_f1=trained.evaluation.macro_f1,
        alpha=config.alpha,
        max_f1_drop=config.max_f1_drop,
        min_window=min(30, config.window),
        min_labels=min(30, config.window),
        output_reference=trained.all_predictions,
    )


def _take(items: Iterator, n: int) -> list:
    out = []
    for _ in range(max(n, 0)):
        try:
            out.append(next(items))
        except StopIteration:
            break
    return out


def compare_variants(
    path: Any, texts: Sequence[str], tags: Sequence[str], batch_sizes: Sequence[int] = (1, 32)
) -> list[dict[str, Any]]:
    """Benchmark the artifact at ``path`` as fp32 and as dynamic int8 (latency per call,
    size, accuracy on ``texts``), rows ready for :func:`mlinfra_kit.optimization.pick`."""
    from mlinfra_kit.optimization import benchmark

    rows = []
    for name, quantize in (("fp32", None), ("int8", "int8")):
        model = TagClassifier.load(path, quantize=quantize)
        predicted = [p.tag for p in model.predict(list(texts))]
        accuracy = sum(p == t for p, t in zip(predicted, tags, strict=True)) / len(tags)
        rows.append(
            benchmark(
                name,
                model.predict,
                lambda b: list(texts[:b]),
                batch_sizes,
                repeat=30,
                accuracy=accuracy,
                size_of=model.net_,
                quantize=quantize,
            )
        )
    return rows
