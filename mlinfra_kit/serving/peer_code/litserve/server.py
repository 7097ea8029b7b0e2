import os

import litserve as ls
import torch

from mlinfra_kit.data import project_text
from mlinfra_kit.models import TagClassifier


class TagAPI(ls.LitAPI):
    def setup(self, device):
        torch.set_num_threads(1)
        self.model = TagClassifier.load(os.environ["MLINFRA_MODEL"])

    def decode_request(self, request):
        return project_text(request["title"], request.get("description", ""))

    def predict(self, texts):  # a list: LitServe batches requests
        return self.model.predict(texts)

    def encode_response(self, prediction):
        return {"tag": prediction.tag, "probabilities": prediction.probabilities}


if __name__ == "__main__":
    api = TagAPI(max_batch_size=32, batch_timeout=0.002)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=int(os.environ["MLINFRA_PORT"]), generate_client_file=False)
