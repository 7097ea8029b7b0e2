"""The retraining pipeline as a Metaflow flow: load data, check it, train, evaluate against
the champion, register (and promote when better), batch-predict into the store.

Run it as Metaflow runs a flow (``USERNAME`` set, and the local datastore where you want
it, e.g. ``METAFLOW_DATASTORE_SYSROOT_LOCAL``; :func:`mlinfra_kit.lifecycle.flow_env` gives
both)::

    python -m mlinfra_kit.lifecycle.retrain_flow run --data-source made-with-ml \\
        --registry sqlite:///mlflow.db --store sqlite:predictions.db

Each step is a separate process; what a step keeps on ``self`` (the data, the model, the
evaluations) is stored as a Metaflow artifact, read back with Metaflow's client
(:func:`mlinfra_kit.lifecycle.flow_results`). The data load retries, as a step reading a
remote source should.
"""

from metaflow import FlowSpec, Parameter, current, retry, step

__all__ = ["RetrainFlow"]


def _registry(where: str):
    """MLflow's registry for a tracking URI (``sqlite:///...``, ``http://...``), else the
    kit's registry of files in the folder ``where``."""
    if "://" in where:
        from mlinfra_kit.application.mlflow_registry import MLflowRegistry, model_cache

        return MLflowRegistry(where, model_cache(where))
    from mlinfra_kit.application import ModelRegistry

    return ModelRegistry(where)


class RetrainFlow(FlowSpec):
    """Retrain the tag model and promote it only when it beats the champion."""

    data_source = Parameter("data-source", default="made-with-ml", help="projects to learn from")
    registry = Parameter("registry", required=True, help="MLflow URI, or a folder")
    store = Parameter("store", required=True, help="prediction store: sqlite:PATH or redis://")
    seed = Parameter("seed", default=0, type=int)
    epochs = Parameter("epochs", default=0, type=int, help="0: the model's default")
    min_gain = Parameter("min-gain", default=0.0, type=float, help="macro F1 to beat by")
    rehearse_retry = Parameter(
        "rehearse-retry", default=False, type=bool, help="fail the data load's first attempt"
    )

    @retry(times=2)
    @step
    def start(self):
        """Load the projects and a holdout that shares none of them. A remote source can
        fail for a moment: Metaflow runs this step again (``@retry``)."""
        from mlinfra_kit.data import load_split

        if self.rehearse_retry and current.retry_count == 0:
            raise ConnectionError("a rehearsed transient failure of the data source")

        # The same holdout in every run, whatever the training seed, so runs compare.
        self.split = load_split(self.data_source, seed=0)
        self.next(self.check_data)

    @step
    def check_data(self):
        """Refuse data a model should not learn from: too few rows, unknown tags, a holdout
        that overlaps the training set."""
        from mlinfra_kit.data import TAGS, check_no_leak

        train, holdout = self.split.train, self.split.holdout
        check_no_leak(train, holdout)
        unknown = sorted({p.tag for p in train.rows} - set(TAGS))
        if unknown or len(train.rows) < 50:
            raise ValueError(f"unusable data: {len(train.rows)} rows, unknown tags {unknown}")
        self.checks = {"train_rows": len(train.rows), "holdout_rows": len(holdout.rows)}
        self.next(self.train)

    @step
    def train(self):
        """The candidate (:func:`mlinfra_kit.lifecycle.train_candidate`)."""
        from mlinfra_kit.lifecycle import train_candidate

        self.model = train_candidate(self.split.train, seed=self.seed, epochs=self.epochs)
        self.next(self.evaluate)

    @step
    def evaluate(self):
        """The candidate and the champion on the same holdout."""
        from mlinfra_kit.models import TagClassifier

        holdout = self.split.holdout
        self.candidate_metrics = self.model.evaluate(holdout.texts, holdout.tags).metrics()
        registry = _registry(self.registry)
        self.champion = registry.production
        self.champion_metrics = None
        if self.champion is not None:
            champion = TagClassifier.load(registry.path(self.champion))
            self.champion_metrics = champion.evaluate(holdout.texts, holdout.tags).metrics()
        baseline = self.champion_metrics["macro_f1"] if self.champion_metrics else None
        # Strictly better: a tie keeps the champion (a new version is a change to justify).
        self.better = baseline is None or (
            self.candidate_metrics["macro_f1"] > baseline + self.min_gain
        )
        self.next(self.register)

    @step
    def register(self):
        """Register the candidate; promote it when it beat the champion."""
        registry = _registry(self.registry)
        notes = f"Metaflow {current.flow_name}/{current.run_id}, seed {self.seed}"
        self.version = registry.register(self.model, self.candidate_metrics, notes=notes)
        if self.better:
            registry.promote(self.version)
        self.serving = registry.production
        self.next(self.batch_predict)

    @step
    def batch_predict(self):
        """The serving version's answers for every holdout project, into the store."""
        from mlinfra_kit.models import TagClassifier
        from mlinfra_kit.serving import open_store, predict_into_store

        registry = _registry(self.registry)
        model = TagClassifier.load(registry.path(self.serving))
        holdout = self.split.holdout
        with open_store(self.store) as store:
            report = predict_into_store(
                model, holdout.ids, holdout.texts, store, model_version=self.serving, progress=False
            )
        self.stored = report.written
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetrainFlow()
