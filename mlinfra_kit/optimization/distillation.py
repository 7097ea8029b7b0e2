"""Knowledge distillation: train a small student on a big teacher's softened outputs.

The teacher's probabilities say more than the label: "this 7 looks a bit like a 1". A
temperature ``T > 1`` softens them so the small differences show; the student learns from
them (KL divergence, scaled by ``T**2`` so its gradients keep their size) and from the
true labels, mixed by ``alpha``. Without labels (``labels=None``) the student learns from the
teacher alone: distillation then also transfers what the teacher learned from labels the
student never sees.

Examples
--------
>>> import torch
>>> s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
>>> round(float(distillation_loss(s, t, torch.tensor([0]), temperature=2.0, alpha=1.0)), 6)
0.0
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mlinfra_kit.progress import bar as progress_bar

__all__ = ["distill", "distillation_loss"]


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    temperature: float = 4.0,
    alpha: float = 0.7,
) -> torch.Tensor:
    """``alpha * T**2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)``;
    the soft term alone when ``labels`` is None."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    soft = (
        F.kl_div(
            F.log_softmax(student_logits / temperature, dim=1),
            F.softmax(teacher_logits / temperature, dim=1),
            reduction="batchmean",
        )
        * temperature**2
    )
    if labels is None:
        return soft
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard


def distill(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None,
    epochs: int = 20,
    temperature: float = 4.0,
    alpha: float = 0.7,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> nn.Module:
    """Train ``student`` on ``teacher``'s outputs for ``x`` and the labels ``y`` (None: the
    teacher's outputs alone, e.g. on inputs nobody labelled); returns it in eval mode."""
    distillation_loss(
        torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), temperature, alpha
    )  # validate the knobs before any work
    teacher.eval()
    with torch.inference_mode():
        teacher_logits = teacher(x).clone()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    for _ in progress_bar(range(epochs), desc="distilling", show=progress):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            optimizer.zero_grad()
            labels = None if y is None else y[idx]
            distillation_loss(
                student(x[idx]), teacher_logits[idx], labels, temperature, alpha
            ).backward()
            optimizer.step()
    return student.eval()
