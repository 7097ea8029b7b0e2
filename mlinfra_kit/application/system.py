"""The application end to end: serve, stream, monitor, retrain, shadow, canary, promote.

Version 1 serves from a real server process. New projects arrive in ``created_on`` order;
each is sent to the production server, and its true tag arrives ``label_delay`` projects
later. Every ``window`` projects the :class:`Monitor` compares inputs, outputs and (labelled)
quality with v1's validation data. The first alert (or, with ``retrain_after``, the
schedule, whichever comes first) triggers a retrain on everything labelled so far; the
candidate (v2) is mirrored in a shadow phase, then rolled out as a canary whose decisions
wait for the labels; it is promoted, or rolled back while v1 keeps serving.

(Over 450 lines: the application's one loop and its phases, which read and change one state.)
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, cast

from mlinfra_kit.application.monitoring import Monitor, WindowReport
from mlinfra_kit.application.registry import ModelRegistry
from mlinfra_kit.application.sources import project_source
from mlinfra_kit.data import TAGS
from mlinfra_kit.data.projects import Project, Projects, train_val_split
from mlinfra_kit.models import TagClassifier, evaluate
from mlinfra_kit.models.evaluation import Evaluation
from mlinfra_kit.online_testing.canary import Canary, Guardrails, Observation
from mlinfra_kit.online_testing.prometheus import (
    PrometheusCanary,
    PrometheusSource,
    SourceDecision,
    buckets_since,
)
from mlinfra_kit.online_testing.shadow import ShadowReport, run_shadow
from mlinfra_kit.online_testing.traffic import predict_timed

__all__ = [
    "AppConfig",
    "AppEvent",
    "ApplicationRun",
    "EventKind",
    "Outcome",
    "Phase",
    "Served",
    "Trained",
    "run_application",
    "train",
]


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


def train(rows: Sequence[Project], epochs: int | None = None, seed: int = 0) -> Trained:
    """Train a tag classifier on ``rows``, a stratified 20 % held out for validation;
    ``epochs`` caps the epochs (None: the model's default). No refit: the validation
    answers stay out of sample, as the monitor's references must be."""
    rows = [r for r in rows if r.tag in TAGS and r.text]
    if len(rows) < 20:
        raise ValueError(f"need at least 20 labelled projects to train, got {len(rows)}")
    fit_part, val_part = train_val_split(Projects(tuple(rows), "application"), 0.2, seed=seed)
    settings = {} if epochs is None else {"epochs": epochs}
    model = TagClassifier(seed=seed, progress=False, device="cpu", refit=False, **settings)
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
    #: The shadow's gate: a candidate whose tags agree with production's on fewer of the
    #: mirrored projects than this is rolled back before it serves anyone (no labels
    #: needed: a retrained model differs from production where the world moved, not on
    #: most projects). 0 turns the gate off, leaving the canary's guardrails.
    min_shadow_agreement: float = 0.5
    canary_steps: tuple[float, ...] = (0.5, 1.0)
    canary_min_requests: int = 15
    guardrails: Guardrails = field(
        default_factory=lambda: Guardrails(max_latency_ratio=3.0, max_quality_drop=0.05)
    )
    alpha: float = 0.001
    max_f1_drop: float = 0.10
    #: Retrain at the first alert, or at the end of the first window past this many stream
    #: projects without one (a schedule as a floor: no alert is not proof of no change).
    #: None: on alerts only.
    retrain_after: int | None = None
    quantize: str | None = None
    epochs: int | None = None  # the model's default
    seed: int = 0

    def __post_init__(self):
        if self.window < 10 or self.label_delay < 0 or self.shadow_requests < 1:
            raise ValueError("need window >= 10, label_delay >= 0 and shadow_requests >= 1")
        if not 0 <= self.min_shadow_agreement <= 1:
            raise ValueError(
                f"min_shadow_agreement is a share between 0 and 1, got {self.min_shadow_agreement}"
            )
        if self.retrain_after is not None and self.retrain_after < 1:
            raise ValueError(f"retrain_after must be 1 or more (or None), got {self.retrain_after}")


class Phase(StrEnum):
    """What the application is doing with a new project."""

    SERVING = "serving"  # production answers alone
    SHADOW = "shadow"  # production answers; the candidate sees a mirrored copy
    CANARY = "canary"  # the canary routes each user to production or the candidate


Outcome = Literal["no_retrain", "promoted", "rolled_back", "undecided"]
EventKind = Literal["alert", "retrain", "shadow", "canary", "promote", "rollback"]


@dataclass(frozen=True)
class Served:
    """One stream project as the application handled it."""

    index: int
    project_id: int
    created_on: str
    phase: Phase
    version: str
    status: int
    predicted: str | None
    tag: str
    latency_ms: float


@dataclass(frozen=True)
class AppEvent:
    """Something the application decided or noticed, at a stream position, and why."""

    index: int
    kind: EventKind
    detail: str

    def row(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "detail": self.detail}


@dataclass
class ApplicationRun:
    """What :func:`run_application` did: every project served, every monitoring window,
    the event log, the candidate (if one was trained) with its shadow and canary, and the
    outcome."""

    served: list[Served] = field(default_factory=list)
    windows: list[WindowReport] = field(default_factory=list)
    events: list[AppEvent] = field(default_factory=list)
    outcome: Outcome = "no_retrain"
    retrain_at: int | None = None
    retrain_reason: str | None = None  # "an alert" or "the schedule"
    candidate: str | None = None
    candidate_trained: Trained | None = None
    shadow: ShadowReport | None = None
    canary: Canary | None = None
    rejected_labels: int = 0
    #: With Prometheus: each canary decision made again from its counts, and each window
    #: served by production alone tested again on what Prometheus scraped from it.
    prometheus_decisions: list[SourceDecision] = field(default_factory=list)
    scraped_windows: list[WindowReport] = field(default_factory=list)

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

    def event(self, index: int, kind: EventKind, detail: str) -> None:
        self.events.append(AppEvent(index, kind, detail))


class _Servers:
    """Real server processes per version, each warmed up on ``warm_up_bodies`` before it
    takes traffic, with a keep-alive client each."""

    def __init__(
        self,
        registry: ModelRegistry,
        quantize: str | None,
        stack: contextlib.ExitStack,
        warm_up_bodies: list[dict[str, str]],
        prometheus: Any = None,
    ):
        self.registry, self.quantize, self.stack = registry, quantize, stack
        self.warm_up_bodies, self.prometheus = warm_up_bodies, prometheus
        self.targets: dict[str, str] = {}  # each version's server as Prometheus scrapes it
        self.urls: dict[str, str] = {}
        self.clients: dict[str, Any] = {}
        self.servers: dict[str, Any] = {}  # the server process of each version

    def start(self, version: str) -> str:
        import httpx

        from mlinfra_kit.serving.process import run_server

        # The registry's folder holds every version the server may be swapped to.
        root = getattr(self.registry, "root", None) or getattr(self.registry, "cache", None)
        server = self.stack.enter_context(
            run_server(
                self.registry.path(version),
                quantize=self.quantize,
                model_root=None if root is None else str(root),
            )
        )
        server.warm_up(self.warm_up_bodies)
        self.urls[version], self.servers[version] = server.url, server
        self.targets[version] = server.url.removeprefix("http://")
        if self.prometheus is not None:
            self.prometheus.add_targets([self.targets[version]])
        self.clients[version] = self.stack.enter_context(httpx.Client(timeout=30))
        return server.url

    def swap(self, serving: str, to: str) -> float:
        """The server of version ``serving`` loads version ``to`` in place (``POST
        /admin/model``) and serves it from then on, without a restart; ``to`` is routed
        there. Returns the seconds the swap took."""
        tic = time.perf_counter()
        response = self.clients[serving].post(
            self.urls[serving] + "/admin/model",
            json={"path": str(self.registry.path(to))},
            headers=self.servers[serving].admin_headers,
        )
        if response.status_code != 200:
            raise RuntimeError(f"the swap to {to} failed ({response.status_code}): {response.text}")
        self.urls[to], self.clients[to] = self.urls[serving], self.clients[serving]
        self.servers[to], self.targets[to] = self.servers[serving], self.targets[serving]
        return time.perf_counter() - tic

    def source(self, *versions: str) -> PrometheusSource:
        """Prometheus' view of the servers of ``versions`` (server errors only: a client's
        bad input is not the model's failure)."""
        return PrometheusSource(
            self.prometheus, {v: self.targets[v] for v in versions}, error_status="5.."
        )

    def send(self, version: str, project: Project) -> tuple[int, str | None, float]:
        return predict_timed(self.clients[version], self.urls[version] + "/predict", project.body)


class _Application:
    """The running system: one method per kind of thing that happens to it (a project
    arrives, labels arrive, a monitoring window closes, the shadow batch is full, the
    canary observes), with its state in one place and its phase explicit."""

    def __init__(
        self,
        registry: ModelRegistry,
        v1: Trained,
        train_rows: Sequence[Project],
        config: AppConfig,
        retrain: Callable[[Sequence[Project]], Trained],
        servers: _Servers,
    ):
        self.registry, self.config, self.retrain_fn, self.servers = (
            registry,
            config,
            retrain,
            servers,
        )
        self.train_rows = list(train_rows)
        self.run = ApplicationRun()
        self.phase = Phase.SERVING
        self.production = cast(str, registry.production)  # run_application checked it is set
        self.monitor = _monitor(v1, config)
        self.labelled: list[Project] = []  # stream projects whose label has arrived
        self.labelled_ids: set[int] = set()
        self.window: list[tuple[Project, str]] = []  # (project, predicted) this window
        self.label_queue: deque[tuple[int, Project]] = deque()  # (arrives at, project)
        self.pending: deque[tuple[int, int, Observation]] = deque()  # canary, awaiting labels
        self.shadow_batch: list[tuple[int, Project]] = []
        self.watching = servers.prometheus is not None
        self.prometheus_canary: PrometheusCanary | None = None
        self.scraped = self.scrape() if self.watching else None  # at the window's start

    def project(self, index: int, project: Project) -> None:
        """A new project arrives at stream position ``index``."""
        self.labels_until(index)
        self.label_queue.append((index + self.config.label_delay, project))
        if self.phase is Phase.SHADOW:
            self.shadow_batch.append((index, project))
            if len(self.shadow_batch) >= self.config.shadow_requests:
                self.shadow()
            return
        self.request(index, project)
        if len(self.window) >= self.config.window:
            self.close_window(index)

    def labels_until(self, index: int) -> None:
        """Labels due by ``index`` arrive; a tag outside the known ones is counted, unused."""
        while self.label_queue and self.label_queue[0][0] <= index:
            _, done = self.label_queue.popleft()
            if done.tag in TAGS:
                self.labelled.append(done)
                self.labelled_ids.add(done.id)
            else:
                self.run.rejected_labels += 1

    def request(self, index: int, project: Project) -> None:
        """Serve one project from production, or from whichever variant the canary routes
        its user to."""
        canary = self.phase is Phase.CANARY
        version = self.run.canary.route(project.id) if canary else self.production
        status, predicted, ms = self.servers.send(version, project)
        self.run.served.append(
            Served(
                index,
                project.id,
                project.created_on.isoformat(),
                self.phase,
                version,
                status,
                predicted,
                project.tag,
                ms,
            )
        )
        if canary:
            quality = None if predicted is None else float(predicted == project.tag)
            failed = status not in (200, 422)
            self.pending.append(
                (
                    index + self.config.label_delay,
                    project.id,
                    Observation(version, ms, failed, quality),
                )
            )
            self.canary_step(index)
        if status == 200:
            self.window.append((project, predicted))

    def close_window(self, index: int) -> None:
        """Test the full window against the references; the first alert retrains."""
        window, self.window = self.window, []
        labels = [p.tag if p.id in self.labelled_ids else None for p, _ in window]
        report = self.monitor.check(
            [p.text for p, _ in window],
            [t for _, t in window],
            labels,
            window=len(self.run.windows),
        )
        self.run.windows.append(report)
        for alert in report.alerts:
            self.run.event(index, "alert", str(alert))
        if self.watching:
            self.check_scraped(len(window), report.window)
        if self.run.retrain_at is not None or self.phase is not Phase.SERVING:
            return
        due = self.config.retrain_after is not None and index + 1 >= self.config.retrain_after
        if report.alerts or due:
            self.retrain(index, "an alert" if report.alerts else "the schedule")

    def scrape(self) -> tuple[dict[str, int], tuple[tuple[float, int], ...]]:
        """Production's server's outputs, as Prometheus scraped them after now."""
        source = self.servers.source(self.production)
        source.wait(after=time.time())
        return source.outputs(self.production)

    def check_scraped(self, answered: int, window: int) -> None:
        """Test the window again on what Prometheus scraped from the production server, when
        that server answered the whole window (not so in a canary phase, where the candidate
        answers some of it)."""
        (tags, unknown), (tags_before, unknown_before) = self.scrape(), self.scraped
        self.scraped = tags, unknown
        tags = {t: n - tags_before.get(t, 0) for t, n in tags.items()}
        if sum(tags.values()) != answered:
            return
        unknown = buckets_since(unknown, unknown_before)
        self.run.scraped_windows.append(self.monitor.check_scraped(tags, unknown, window))

    def retrain(self, index: int, reason: str) -> None:
        """Train a candidate on everything labelled so far, register it, start its server,
        and mirror traffic to it next."""
        rows = [*self.train_rows, *self.labelled]
        trained = self.retrain_fn(rows)
        run = self.run
        run.retrain_at, run.retrain_reason, run.candidate_trained = index, reason, trained
        run.candidate = self.registry.register(
            trained.model,
            trained.evaluation.metrics(),
            notes=f"retrained at stream index {index} ({reason}) on {len(rows)} projects: "
            f"{len(self.train_rows)} before the cut-off and the {len(self.labelled)} stream "
            f"projects whose labels had arrived ({trained.train_size} to train, the rest to "
            "validate)",
        )
        run.event(
            index,
            "retrain",
            f"{run.candidate}, on {reason}: validation macro F1 {trained.evaluation.macro_f1:.3f}",
        )
        self.servers.start(run.candidate)
        self.phase = Phase.SHADOW

    def shadow(self) -> None:
        """Send the shadow batch to production, mirrored to the candidate; a candidate
        that fails, or that disagrees with production on too many projects
        (``min_shadow_agreement``), is rolled back; one that passes goes on to the canary."""
        batch, self.shadow_batch = self.shadow_batch, []
        run = self.run
        run.shadow = report = run_shadow(
            self.servers.urls[self.production],
            [p.body for _, p in batch],
            self.servers.urls[run.candidate],
        )
        for (index, p), answer, ms in zip(
            batch, report.responses, report.primary_latencies_ms, strict=True
        ):
            status = 200 if "tag" in answer else 422
            run.served.append(
                Served(
                    index,
                    p.id,
                    p.created_on.isoformat(),
                    Phase.SHADOW,
                    self.production,
                    status,
                    answer.get("tag"),
                    p.tag,
                    ms,
                )
            )
            if status == 200:
                self.window.append((p, answer["tag"]))
        last = batch[-1][0]
        run.event(
            last,
            "shadow",
            f"{report.compared} mirrored, agreement "
            f"{report.agreement:.2f}, {report.candidate_errors} "
            "candidate errors",
        )
        if report.candidate_errors:
            run.outcome, self.phase = "rolled_back", Phase.SERVING
            run.event(last, "rollback", "candidate failed in shadow")
            return
        if report.agreement < self.config.min_shadow_agreement:
            run.outcome, self.phase = "rolled_back", Phase.SERVING
            run.event(
                last,
                "rollback",
                f"candidate agreed with production on {report.agreements} of {report.compared} "
                f"mirrored projects, below the shadow gate's "
                f"{self.config.min_shadow_agreement:.0%}",
            )
            return
        config = self.config
        run.canary = Canary(
            config.canary_steps,
            config.canary_min_requests,
            config.guardrails,
            baseline=self.production,
            candidate=run.candidate,
        )
        self.phase = Phase.CANARY
        if self.watching:
            source = self.servers.source(self.production, run.candidate)
            self.prometheus_canary = PrometheusCanary(run.canary, source)
            run.prometheus_decisions = self.prometheus_canary.decisions
        run.event(last, "canary", f"canary starts at {run.canary.share:.0%}")

    def canary_step(self, index: int) -> None:
        """Feed the canary the observations whose labels have arrived; act on its
        decision: promote (and monitor the new version against its own data), roll back,
        or keep going."""
        run, canary = self.run, self.run.canary
        while self.pending and self.pending[0][0] <= index and canary.status == "running":
            _, user, observation = self.pending.popleft()
            before = len(canary.decisions)
            canary.observe(user, observation)
            for decision in canary.decisions[before:]:
                detail = f"{decision.decision} (decided at share {decision.share:.0%})"
                if self.prometheus_canary is not None:
                    again = self.prometheus_canary.decide()
                    detail += (
                        f"; from Prometheus: {again.prometheus}, read {again.delay_s:.2f} s later"
                    )
                run.event(index, "canary", detail)
        if canary.status == "completed":
            self.registry.promote(run.candidate)
            seconds = self.servers.swap(self.production, run.candidate)
            run.outcome, self.phase, self.production = "promoted", Phase.SERVING, canary.candidate
            run.event(
                index,
                "promote",
                f"{run.candidate} in production: the production server "
                f"swapped to it in {seconds:.2f} s, without a restart",
            )
            self.monitor = _monitor(run.candidate_trained, self.config)
        elif canary.status == "rolled_back":
            run.outcome, self.phase = "rolled_back", Phase.SERVING
            run.event(index, "rollback", canary.reason)

    def finish(self, last_index: int) -> ApplicationRun:
        """The stream ended: mirror what the shadow batch holds, and say if the canary
        had not decided."""
        if self.shadow_batch:
            self.shadow()
        if self.phase is Phase.CANARY:
            self.run.outcome = "undecided"
            self.run.event(last_index, "canary", "stream ended before the canary decided")
        return self.run


def run_application(
    registry: ModelRegistry,
    v1: Trained,
    train_rows: Sequence[Project],
    stream: Sequence[Project],
    config: AppConfig = AppConfig(),
    retrain: Callable[[Sequence[Project]], Trained] | None = None,
    redis_url: str | None = None,
    progress: bool = True,
    prometheus: Any = None,
) -> ApplicationRun:
    """Run the whole system over ``stream`` with ``registry.production`` serving first.

    ``retrain(rows)`` builds the candidate (default: :func:`train` with the config's epochs
    and seed); pass another to rehearse a bad candidate. With ``redis_url``, the projects
    travel through a Redis Stream (consumer group, acknowledged once handled). With
    ``prometheus`` (a running :class:`~mlinfra_kit.services.PrometheusServer`), every server
    becomes its scrape target, each canary decision is made again from its counts
    (``run.prometheus_decisions``) and each window production answered alone is tested
    again on what it scraped (``run.scraped_windows``); the application acts on its own
    readings, and the notebook compares the two.
    """
    from mlinfra_kit.progress import bar as progress_bar

    if registry.production is None:
        raise ValueError("the registry has no production version: register and promote v1")
    retrain = retrain or (lambda rows: train(rows, config.epochs, config.seed))
    with contextlib.ExitStack() as stack:
        warm_up = [p.body for p in train_rows[-20:]]
        servers = _Servers(registry, config.quantize, stack, warm_up, prometheus)
        servers.start(registry.production)
        app = _Application(registry, v1, train_rows, config, retrain, servers)
        arriving = progress_bar(
            project_source(stream, redis_url),
            total=len(stream),
            desc="stream",
            show=progress,
        )
        for index, project in enumerate(arriving):
            app.project(index, project)
        return app.finish(len(stream) - 1)


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
