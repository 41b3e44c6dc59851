"""GLUE classification metrics, and the sets of them the upstream scripts report.

- `accuracy`, `binary_f1` and `matthews_corrcoef` give the values of scikit-learn's
  accuracy_score, f1_score (average="binary", pos_label=1) and matthews_corrcoef, from
  NumPy alone. Where scikit-learn warns and returns 0 (F1 with no positive label or
  prediction, MCC when labels or predictions are constant), we return 0 quietly.
- `hf_glue_metrics` gives the dict of HuggingFace transformers v3.0.2
  `glue_compute_metrics` / `xnli_compute_metrics`: mrpc -> acc, f1, acc_and_f1;
  cola -> mcc; mnli -> mnli/acc; xnli -> acc.
- `google_eval_metrics` gives what google-research/bert `run_classifier.py` writes to
  eval_results.txt: eval_accuracy, and eval_loss when per-example losses are given.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from bertfam.errors import UserError


class UnknownMetricTaskError(UserError):
    """A task name with no metric set."""


def _as_label_vectors(predictions, labels) -> Tuple[np.ndarray, np.ndarray]:
    predictions = np.asarray(predictions).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if predictions.shape != labels.shape:
        raise ValueError(
            f"{predictions.size} predictions for {labels.size} labels: they must pair up"
        )
    if labels.size == 0:
        raise ValueError("no predictions to score")
    return predictions, labels


def accuracy(predictions, labels) -> float:
    """The fraction of predictions equal to their label."""
    predictions, labels = _as_label_vectors(predictions, labels)
    return float(np.mean(predictions == labels))


def binary_f1(predictions, labels, positive=1) -> float:
    """F1 of the `positive` class; 0.0 when neither labels nor predictions have it."""
    predictions, labels = _as_label_vectors(predictions, labels)
    predicted = predictions == positive
    actual = labels == positive
    true_positives = int(np.sum(predicted & actual))
    # 2PR/(P+R) written with counts: 2TP / (2TP + FP + FN), and 2TP + FP + FN is the
    # number of predicted positives plus actual positives.
    denominator = int(np.sum(predicted)) + int(np.sum(actual))
    if denominator == 0:
        return 0.0
    return 2.0 * true_positives / denominator


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation (multi-class form, as scikit-learn); 0.0 when undefined."""
    predictions, labels = _as_label_vectors(predictions, labels)
    classes, codes = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    label_codes, prediction_codes = codes[: labels.size], codes[labels.size :]
    # Python ints: the products below overflow int64 for a few million examples.
    label_counts = [int(n) for n in np.bincount(label_codes, minlength=len(classes))]
    prediction_counts = [int(n) for n in np.bincount(prediction_codes, minlength=len(classes))]
    correct = int(np.sum(label_codes == prediction_codes))
    samples = int(labels.size)
    agreement = sum(t * p for t, p in zip(label_counts, prediction_counts))
    covariance = correct * samples - agreement
    label_variance = samples * samples - sum(t * t for t in label_counts)
    prediction_variance = samples * samples - sum(p * p for p in prediction_counts)
    if label_variance == 0 or prediction_variance == 0:
        return 0.0  # a constant vector: the correlation is undefined
    return float(covariance / np.sqrt(float(label_variance) * float(prediction_variance)))


def _accuracy_and_f1(predictions, labels) -> Dict[str, float]:
    acc = accuracy(predictions, labels)
    f1 = binary_f1(predictions, labels)
    return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


_HF_METRICS: Dict[str, Callable[..., Dict[str, float]]] = {
    "cola": lambda p, y: {"mcc": matthews_corrcoef(p, y)},
    "mnli": lambda p, y: {"mnli/acc": accuracy(p, y)},
    "mrpc": _accuracy_and_f1,
    "xnli": lambda p, y: {"acc": accuracy(p, y)},
}


def hf_glue_metrics(task_name: str, predictions, labels) -> Dict[str, float]:
    """The metric dict HuggingFace v3.0.2 reports for `task_name` (any case)."""
    name = task_name.lower()
    if name not in _HF_METRICS:
        raise UnknownMetricTaskError(
            f"no GLUE metrics for task {task_name!r}: known tasks are "
            f"{', '.join(sorted(_HF_METRICS))}"
        )
    return _HF_METRICS[name](predictions, labels)


def google_eval_metrics(
    predictions, labels, per_example_loss: Optional[np.ndarray] = None
) -> Dict[str, float]:
    """What Google's run_classifier.py evaluates: eval_accuracy (+ mean loss, eval_loss)."""
    metrics = {"eval_accuracy": accuracy(predictions, labels)}
    if per_example_loss is not None:
        losses = np.asarray(per_example_loss, dtype=np.float64).reshape(-1)
        if losses.size != np.asarray(labels).size:
            raise ValueError(f"{losses.size} losses for {np.asarray(labels).size} labels")
        metrics["eval_loss"] = float(np.mean(losses))
    return metrics
