import os

import numpy as np
import torch
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from mlinfra_kit.data import project_text
from mlinfra_kit.models import TagClassifier

torch.set_num_threads(1)
model = TagClassifier.load(os.environ["MLINFRA_MODEL"])


@batch
def infer(title, description):  # bytes arrays of shape (batch, 1)
    texts = [
        project_text(t[0].decode(), d[0].decode()) for t, d in zip(title, description, strict=True)
    ]
    tags = [p.tag.encode() for p in model.predict(texts)]
    return {"tag": np.array(tags, dtype=np.object_).reshape(-1, 1)}


config = TritonConfig(
    http_address="127.0.0.1",
    http_port=int(os.environ["MLINFRA_PORT"]),
    grpc_address="127.0.0.1",
    grpc_port=int(os.environ["MLINFRA_GRPC_PORT"]),
    allow_metrics=True,
    allow_gpu_metrics=False,
    metrics_port=int(os.environ["MLINFRA_METRICS_PORT"]),
)
with Triton(config=config, workspace="workspace") as triton:
    triton.bind(
        model_name="tag",
        infer_func=infer,
        inputs=[
            Tensor(name="title", dtype=bytes, shape=(1,)),
            Tensor(name="description", dtype=bytes, shape=(1,)),
        ],
        outputs=[Tensor(name="tag", dtype=bytes, shape=(1,))],
        config=ModelConfig(
            max_batch_size=32, batcher=DynamicBatcher(max_queue_delay_microseconds=2000)
        ),
    )
    triton.serve()
