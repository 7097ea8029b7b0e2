"""A seeded generator of synthetic ML projects, the kit's offline running example.

The shipped ``datasets/projects.csv`` and ``datasets/holdout.csv`` are made by
``datasets/make_projects.py``, which calls :func:`generate_projects`. The data is
synthetic but built to behave like the public Made-With-ML projects dataset:

- the same schema (``id, created_on, title, description, tag``) and the same four tags;
- realistic vocabulary, with words shared across topics (a PyTorch object detector and
  a PyTorch translator share words) and projects that mix two topics, so the task is not
  trivial; a small share of labels is noisy, as hand labels are;
- class imbalance (MLOps is the smallest class);
- a time axis with drift: the topic mix moves over the years and new terms appear
  (vision transformers, diffusion, large language models), so later notebooks can study
  drift, out-of-vocabulary rates and retraining.

Examples
--------
>>> rows = generate_projects(5, seed=1)
>>> [r["id"] for r in rows]
[1, 2, 3, 4, 5]
>>> sorted(rows[0])
['created_on', 'description', 'id', 'tag', 'title']
>>> generate_projects(5, seed=1) == rows
True
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from mlinfra_kit.data.projects import TAGS

__all__ = ["generate_projects", "TOPIC_MIX"]

# Share of each topic at the start and at the end of the time range (interpolated).
TOPIC_MIX = {
    "computer-vision": (0.42, 0.27),
    "natural-language-processing": (0.31, 0.42),
    "mlops": (0.07, 0.17),
    "other": (0.20, 0.14),
}

# Terms as "text" or ("text", year the term appears).
_TASKS = {
    "computer-vision": [
        "image classification",
        "object detection",
        "semantic segmentation",
        "instance segmentation",
        "pose estimation",
        "face recognition",
        "image generation",
        "super-resolution",
        "optical character recognition",
        "depth estimation",
        "video classification",
        "style transfer",
        "3D reconstruction",
        "visual tracking",
        "image inpainting",
        "medical image segmentation",
        "image retrieval",
        ("text-to-image generation", 2022.3),
        ("open-vocabulary detection", 2022.0),
        ("promptable segmentation", 2023.3),
    ],
    "natural-language-processing": [
        "text classification",
        "named entity recognition",
        "machine translation",
        "question answering",
        "sentiment analysis",
        "summarization",
        "language modeling",
        "topic modeling",
        "text generation",
        "dialogue systems",
        "information extraction",
        "paraphrase detection",
        "spelling correction",
        "keyword extraction",
        "document classification",
        ("semantic search", 2020.5),
        ("retrieval-augmented generation", 2022.8),
        ("instruction following", 2022.5),
        ("chat assistants", 2022.9),
    ],
    "mlops": [
        "model serving",
        "experiment tracking",
        "feature stores",
        "model monitoring",
        "data validation",
        "continuous training",
        "pipeline orchestration",
        "model registry",
        "hyperparameter tuning",
        "distributed training",
        "data versioning",
        "drift detection",
        "batch inference",
        "model deployment",
        "A/B testing of models",
        ("LLM serving", 2023.0),
        ("LLM observability", 2023.2),
    ],
    "other": [
        "reinforcement learning",
        "time series forecasting",
        "graph neural networks",
        "recommender systems",
        "tabular classification",
        "anomaly detection",
        "causal inference",
        "Bayesian optimization",
        "audio classification",
        "music generation",
        "AutoML",
        "federated learning",
        "model interpretability",
        "speech synthesis",
        "survival analysis",
        "churn prediction",
        "fraud detection",
        ("offline reinforcement learning", 2021.0),
    ],
}

_METHODS = {
    "computer-vision": [
        "convolutional neural networks",
        "ResNet",
        "YOLO",
        "U-Net",
        "Mask R-CNN",
        "EfficientNet",
        "GANs",
        "OpenCV",
        "MobileNet",
        "Faster R-CNN",
        "autoencoders",
        ("vision transformers", 2020.9),
        ("CLIP", 2021.1),
        ("diffusion models", 2022.0),
        ("NeRF", 2020.6),
        ("Segment Anything", 2023.3),
        ("DINOv2", 2023.3),
    ],
    "natural-language-processing": [
        "BERT",
        "LSTMs",
        "word2vec",
        "GloVe embeddings",
        "seq2seq models",
        "spaCy",
        "GPT-2",
        "RoBERTa",
        "fastText",
        "NLTK",
        "DistilBERT",
        ("T5", 2020.0),
        ("sentence transformers", 2020.2),
        ("large language models", 2022.6),
        ("LoRA fine-tuning", 2022.9),
        ("prompt engineering", 2022.7),
        ("Llama", 2023.2),
    ],
    "mlops": [
        "Docker",
        "Kubernetes",
        "MLflow",
        "Airflow",
        "Kubeflow",
        "FastAPI",
        "DVC",
        "Great Expectations",
        "Prometheus",
        "TorchServe",
        "Terraform",
        "GitHub Actions",
        "Weights & Biases",
        "BentoML",
        "Ray",
        "ONNX",
        ("Feast", 2020.0),
        ("Triton Inference Server", 2020.5),
        ("vLLM", 2023.5),
        ("Evidently", 2021.0),
    ],
    "other": [
        "XGBoost",
        "Q-learning",
        "PPO",
        "Prophet",
        "graph convolutional networks",
        "matrix factorization",
        "gradient boosting",
        "Gaussian processes",
        "SHAP",
        "random forests",
        "LightGBM",
        "OpenAI Gym",
        "node2vec",
        "ARIMA",
        "Optuna",
        ("decision transformers", 2021.5),
        ("TabNet", 2020.0),
    ],
}

_WORDS = {
    "computer-vision": [
        "images",
        "pixels",
        "bounding boxes",
        "cameras",
        "video frames",
        "augmentation",
        "feature maps",
        "COCO",
        "ImageNet",
        "convolutions",
        "photos",
        "masks",
        "keypoints",
        "satellite imagery",
        "X-rays",
        "webcam",
        "image resolution",
        "visual features",
    ],
    "natural-language-processing": [
        "tokens",
        "sentences",
        "corpora",
        "word embeddings",
        "vocabulary",
        "documents",
        "tweets",
        "reviews",
        "news articles",
        "tokenizers",
        "language",
        "grammar",
        "multilingual text",
        "entities",
        "Wikipedia",
        "dialogue",
        "transcripts",
    ],
    "mlops": [
        "deployment",
        "production",
        "latency",
        "reproducibility",
        "pipelines",
        "infrastructure",
        "scaling",
        "logging",
        "REST APIs",
        "the cloud",
        "containers",
        "versioning",
        "CI/CD",
        "monitoring dashboards",
        "alerts",
        "autoscaling",
        "artifacts",
        "a model registry",
        "GPUs in production",
    ],
    "other": [
        "rewards",
        "environments",
        "forecasts",
        "nodes",
        "edges",
        "users",
        "items",
        "tabular features",
        "trees",
        "sensors",
        "transactions",
        "agents",
        "policies",
        "seasonality",
        "spectrograms",
        "recommendations",
        "click logs",
    ],
}

_SHARED = [
    "deep learning",
    "PyTorch",
    "TensorFlow",
    "Keras",
    "neural networks",
    "a new dataset",
    "transfer learning",
    "pretrained models",
    "fine-tuning",
    "benchmarks",
    "self-supervised learning",
    "attention",
    "transformers",
    "JAX",
    "scikit-learn",
    "a Colab notebook",
    "contrastive learning",
    "knowledge distillation",
]

_TITLE_TEMPLATES = [
    "{Method} for {Task}",
    "{Task} with {Method}",
    "{Name}: {Task} in {Framework}",
    "{Adjective} {Task}",
    "{Name}: {Adjective} {Task} with {Method}",
    "Awesome {Task}",
    "{Task} from Scratch",
    "{Name}",
    "Understanding {Method}",
    "{Task} using {Method} and {Framework}",
    "A Guide to {Task}",
]

_SENTENCES = [
    "{Adjective} implementation of {method} for {task} using {framework}.",
    "This repository contains code to train and evaluate {task} models on {word}.",
    "We apply {method} to {task} and compare it with {shared}.",
    "Includes {word}, {word2} and {shared}, with a demo.",
    "Learn how to build {task} step by step, from {word} to {word2}.",
    "{Name} makes {task} {adjective2} with {method}.",
    "Benchmarks of {method} on {word}, trained with {framework}.",
    "An open-source library for {task} built on {method}.",
    "Tutorial on {task}: data preparation, {shared} and evaluation.",
    "Our approach combines {method} and {shared} for {task} on {word}.",
]

_QUOTED = [
    'Try the "{Name}" demo in your browser.',
    'Read the blog post "{Task} in practice".',
    'Winner of the "{Name} challenge" for {task}.',
]

_ADJECTIVES = [
    "simple",
    "fast",
    "minimal",
    "scalable",
    "robust",
    "lightweight",
    "modular",
    "end-to-end",
    "efficient",
    "interpretable",
    "production-ready",
    "practical",
]
_FRAMEWORKS = ["PyTorch", "TensorFlow", "Keras", "JAX", "scikit-learn", "PyTorch Lightning"]
_SYLLABLES = [
    "Deep",
    "Vis",
    "Lex",
    "Auto",
    "Flow",
    "Sense",
    "Net",
    "Grad",
    "Tensor",
    "Neo",
    "Data",
    "Quick",
    "Smart",
    "Open",
    "Hyper",
    "Meta",
    "Torch",
    "Mind",
    "Pix",
    "Tok",
]
_SUFFIXES = ["ify", "ly", "Lab", "Kit", "Hub", "Box", "io", "X", "Zoo", "Forge"]

_MIX_PROBABILITY = 0.35  # share of projects that borrow vocabulary from a second topic
_LABEL_NOISE = 0.04  # share of projects whose tag is another plausible topic


def _available(terms: list, year: float) -> list[str]:
    return [t if isinstance(t, str) else t[0] for t in terms if isinstance(t, str) or t[1] <= year]


def _fraction_of_year(when: datetime) -> float:
    return when.year + (when.timetuple().tm_yday - 1) / 366


def _pick_topic(rng: random.Random, progress: float) -> str:
    weights = [a + (b - a) * progress for a, b in TOPIC_MIX.values()]
    return rng.choices(list(TOPIC_MIX), weights=weights)[0]


def _name(rng: random.Random) -> str:
    return rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES + _SUFFIXES)


def _fill(template: str, rng: random.Random, topic: str, other: str, year: float) -> str:
    """Fill a template; each slot draws from the second topic ``other`` 30% of the time."""

    def draw(table: dict) -> str:
        source = other if rng.random() < 0.3 else topic
        return rng.choice(_available(table[source], year))

    word = draw(_WORDS)
    values = {
        "task": draw(_TASKS),
        "method": draw(_METHODS),
        "word": word,
        "word2": rng.choice([w for w in _available(_WORDS[topic], year) if w != word]),
        "shared": rng.choice(_SHARED),
        "framework": rng.choice(_FRAMEWORKS),
        "adjective": rng.choice(_ADJECTIVES),
        "adjective2": rng.choice(_ADJECTIVES),
        "name": _name(rng),
    }
    values.update({k.capitalize(): v[:1].upper() + v[1:] for k, v in values.items()})
    return template.format(**values)


_SMALL_WORDS = {"a", "an", "and", "for", "from", "in", "of", "on", "the", "to", "using", "with"}


def _title_case(text: str) -> str:
    """Capitalise words as titles are written, leaving acronyms and small words alone."""
    words = text.split(" ")
    return " ".join(
        w[:1].upper() + w[1:] if w.islower() and (i == 0 or w not in _SMALL_WORDS) else w
        for i, w in enumerate(words)
    )


def _project(rng: random.Random, pid: int, when: datetime, progress: float) -> dict:
    topic = _pick_topic(rng, progress)
    mixed = rng.random() < _MIX_PROBABILITY
    other = rng.choice([t for t in TAGS if t != topic]) if mixed else topic
    year = _fraction_of_year(when)
    title = _title_case(_fill(rng.choice(_TITLE_TEMPLATES), rng, topic, other, year))
    sentences = [
        _fill(s, rng, topic, other, year) for s in rng.sample(_SENTENCES, rng.choice([1, 2, 2, 3]))
    ]
    if rng.random() < 0.08:
        sentences.append(_fill(rng.choice(_QUOTED), rng, topic, other, year))
    separator = "\n" if rng.random() < 0.1 else " "
    tag = topic
    if rng.random() < _LABEL_NOISE:
        tag = other if other != topic else rng.choice([t for t in TAGS if t != topic])
    return {
        "id": pid,
        "created_on": when.strftime("%Y-%m-%d %H:%M:%S"),
        "title": title,
        "description": separator.join(sentences),
        "tag": tag,
    }


def generate_projects(
    n: int = 955,
    seed: int = 0,
    start: datetime = datetime(2019, 1, 1),
    end: datetime = datetime(2024, 1, 1),
) -> list[dict]:
    """Generate ``n`` projects ordered by ``created_on``, ids 1..n, deterministic in ``seed``.

    The topic mix drifts linearly from ``TOPIC_MIX[tag][0]`` at ``start`` to
    ``TOPIC_MIX[tag][1]`` at ``end``; terms appear only after their year.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    rng = random.Random(seed)
    span = (end - start).total_seconds()
    offsets = sorted(rng.uniform(0, span) for _ in range(n))
    return [
        _project(rng, i + 1, start + timedelta(seconds=int(offset)), offset / span)
        for i, offset in enumerate(offsets)
    ]
