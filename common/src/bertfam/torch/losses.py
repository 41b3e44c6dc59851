"""Every training loss of the PyTorch flows, as the upstream programs define them.

- pre-training (NVIDIA's `BertPretrainingCriterion`, summed here): masked-LM and
  next-sentence cross-entropies, labels -1 not being predictions;
- SQuAD (HuggingFace's and Google's): the mean of the start and end cross-entropies;
- GLUE (HuggingFace's `BertForSequenceClassification`): the batch mean of the softmax
  cross-entropy.

Logits are cast to float32 first, so bf16 runs take the loss in full precision.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F


def pretraining_losses(
    mlm_logits, mlm_labels, nsp_logits, nsp_labels
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Summed (not averaged) masked-LM and next-sentence cross-entropies: labels -1 are
    not predictions. The caller divides by its counts, so that micro-batches and workers
    add up to the loss of the whole batch."""
    mlm = F.cross_entropy(
        mlm_logits.reshape(-1, mlm_logits.shape[-1]).float(),
        mlm_labels.reshape(-1),
        ignore_index=-1,
        reduction="sum",
    )
    nsp = F.cross_entropy(nsp_logits.float(), nsp_labels.reshape(-1), reduction="sum")
    return mlm, nsp


def span_loss(start_logits, end_logits, start_positions, end_positions) -> torch.Tensor:
    """HuggingFace's (and Google's) SQuAD loss: the mean of start and end cross-entropies,
    positions outside the sequence clamped and ignored."""
    length = start_logits.shape[1]
    start_positions = start_positions.clamp(0, length)
    end_positions = end_positions.clamp(0, length)
    start = F.cross_entropy(start_logits, start_positions, ignore_index=length)
    end = F.cross_entropy(end_logits, end_positions, ignore_index=length)
    return (start + end) / 2


def classification_loss(logits, labels) -> torch.Tensor:
    """The mean cross-entropy over the batch."""
    return F.cross_entropy(logits.float(), labels)
