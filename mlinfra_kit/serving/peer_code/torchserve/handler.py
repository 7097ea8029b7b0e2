import json
import os

import torch
from ts.torch_handler.base_handler import BaseHandler

from mlinfra_kit.data import project_text
from mlinfra_kit.models import TagClassifier


class TagHandler(BaseHandler):
    def initialize(self, context):
        torch.set_num_threads(1)
        self.model = TagClassifier.load(os.environ["MLINFRA_MODEL"])
        self.initialized = True

    def handle(self, data, context):  # a batch: one row per request
        rows = [row.get("body") or row.get("data") for row in data]
        rows = [json.loads(r) if isinstance(r, (bytes, bytearray)) else r for r in rows]
        texts = [project_text(r["title"], r.get("description", "")) for r in rows]
        return [{"tag": p.tag, "probabilities": p.probabilities} for p in self.model.predict(texts)]
