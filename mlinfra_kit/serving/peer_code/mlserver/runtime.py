import os

import torch
from mlserver import MLModel
from mlserver.codecs import StringCodec
from mlserver.types import InferenceRequest, InferenceResponse

from mlinfra_kit.models import TagClassifier


class TagRuntime(MLModel):
    async def load(self) -> bool:
        torch.set_num_threads(1)
        self.model = TagClassifier.load(os.environ["MLINFRA_MODEL"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        texts = StringCodec.decode_input(payload.inputs[0])
        tags = [p.tag for p in self.model.predict(texts)]
        return InferenceResponse(
            model_name=self.name, outputs=[StringCodec.encode_output("tag", tags)]
        )
