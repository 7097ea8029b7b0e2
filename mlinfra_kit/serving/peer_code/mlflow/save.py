import os

import mlflow
import pandas as pd
from tag_model import TagModel

mlflow.pyfunc.save_model(
    "tag-pyfunc",
    python_model=TagModel(),
    artifacts={"model": os.environ["MLINFRA_MODEL"]},
    code_paths=["tag_model.py"],
    input_example=pd.DataFrame([{"title": "YOLO on a webcam", "description": ""}]),
)
