import torch
from mlflow.pyfunc import PythonModel

from mlinfra_kit.data import project_text
from mlinfra_kit.models import TagClassifier


class TagModel(PythonModel):
    def load_context(self, context):
        torch.set_num_threads(1)
        self.model = TagClassifier.load(context.artifacts["model"])

    def predict(self, context, model_input, params=None):
        texts = [
            project_text(t, d)
            for t, d in zip(model_input["title"], model_input["description"], strict=True)
        ]
        return [p.tag for p in self.model.predict(texts)]
