import os

import bentoml
import torch

from mlinfra_kit.models import TagClassifier


@bentoml.service(workers=1)
class TagService:
    def __init__(self):
        torch.set_num_threads(1)
        self.model = TagClassifier.load(os.environ["MLINFRA_MODEL"])

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000)
    def predict(self, texts: list[str]) -> list[dict]:
        return [{"tag": p.tag, "probabilities": p.probabilities} for p in self.model.predict(texts)]
