"""GLUE metrics against scikit-learn and HuggingFace's glue_compute_metrics."""

import warnings

import numpy as np
import pytest
import sklearn.metrics as sk

from bertfam.errors import UserError
from bertfam.glue.metrics import (
    UnknownMetricTaskError,
    accuracy,
    binary_f1,
    google_eval_metrics,
    hf_glue_metrics,
    matthews_corrcoef,
)


def random_cases():
    rng = np.random.default_rng(20240531)
    cases = []
    for size in (1, 2, 7, 100, 5000):
        for positive_rate in (0.05, 0.5, 0.9):
            labels = (rng.random(size) < positive_rate).astype(np.int64)
            noise = rng.random(size) < rng.uniform(0.05, 0.6)
            cases.append((np.where(noise, 1 - labels, labels), labels))
    return cases


def degenerate_cases():
    zeros, ones = np.zeros(10, dtype=int), np.ones(10, dtype=int)
    mixed = np.array([0, 1] * 5)
    return [
        (zeros, zeros),  # no positives anywhere
        (ones, ones),  # all positive, all right
        (zeros, ones),  # all wrong, constant predictions
        (ones, zeros),  # positives only predicted
        (mixed, zeros),  # constant labels
        (zeros, mixed),  # constant predictions
        (mixed, mixed),  # perfect
        (1 - mixed, mixed),  # perfectly wrong
        (np.array([1]), np.array([0])),
        (np.array([0]), np.array([0])),
    ]


def sklearn_quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def ours_without_warnings(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            return function(*args)


@pytest.mark.parametrize("predictions, labels", random_cases() + degenerate_cases())
def test_binary_metrics_equal_sklearn(predictions, labels):
    assert ours_without_warnings(accuracy, predictions, labels) == sk.accuracy_score(
        labels, predictions
    )
    expected_f1 = sk.f1_score(labels, predictions, pos_label=1, zero_division=0.0)
    assert ours_without_warnings(binary_f1, predictions, labels) == pytest.approx(
        expected_f1, rel=1e-12, abs=1e-15
    )
    expected_mcc = sklearn_quietly(sk.matthews_corrcoef, labels, predictions)
    assert ours_without_warnings(matthews_corrcoef, predictions, labels) == pytest.approx(
        expected_mcc, rel=1e-12, abs=1e-15
    )


def test_degenerate_values():
    zeros = np.zeros(6, dtype=int)
    assert binary_f1(zeros, zeros) == 0.0
    assert matthews_corrcoef(zeros, np.array([0, 1, 0, 1, 0, 1])) == 0.0
    assert matthews_corrcoef(np.array([0, 1, 1]), np.array([0, 1, 1])) == 1.0
    assert matthews_corrcoef(np.array([1, 0, 0]), np.array([0, 1, 1])) == -1.0


def test_multiclass_mcc_and_accuracy_equal_sklearn():
    rng = np.random.default_rng(7)
    for size in (3, 50, 3000):
        labels = rng.integers(0, 3, size)
        predictions = np.where(rng.random(size) < 0.3, rng.integers(0, 3, size), labels)
        assert accuracy(predictions, labels) == sk.accuracy_score(labels, predictions)
        assert matthews_corrcoef(predictions, labels) == pytest.approx(
            sk.matthews_corrcoef(labels, predictions), rel=1e-12, abs=1e-15
        )


def test_f1_positive_is_class_one_among_others():
    labels = np.array([1, 1, 0, 2, 2, 1])
    predictions = np.array([1, 0, 1, 2, 1, 1])
    # 2 true positives, 2 predicted-only, 1 missed: 2*2 / (2*2 + 2 + 1)
    assert binary_f1(predictions, labels) == pytest.approx(4 / 7)


def test_task_metric_dicts_equal_huggingface():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HF marks these helpers as deprecated
        from transformers.data.metrics import glue_compute_metrics, xnli_compute_metrics

    rng = np.random.default_rng(3)
    binary_labels = rng.integers(0, 2, 400)
    binary_predictions = np.where(rng.random(400) < 0.2, 1 - binary_labels, binary_labels)
    nli_labels = rng.integers(0, 3, 400)
    nli_predictions = np.where(rng.random(400) < 0.3, rng.integers(0, 3, 400), nli_labels)
    cases = [
        ("mrpc", binary_predictions, binary_labels),
        ("cola", binary_predictions, binary_labels),
        ("mnli", nli_predictions, nli_labels),
    ]
    for task, predictions, labels in cases:
        ours = hf_glue_metrics(task, predictions, labels)
        theirs = sklearn_quietly(glue_compute_metrics, task, predictions, labels)
        assert ours.keys() == theirs.keys(), task
        for key in ours:
            assert ours[key] == pytest.approx(float(theirs[key]), rel=1e-12), (task, key)
    ours = hf_glue_metrics("XNLI", nli_predictions, nli_labels)
    theirs = sklearn_quietly(xnli_compute_metrics, "xnli", nli_predictions, nli_labels)
    assert ours == pytest.approx({key: float(value) for key, value in theirs.items()})
    assert set(hf_glue_metrics("mrpc", binary_predictions, binary_labels)) == {
        "acc",
        "f1",
        "acc_and_f1",
    }


def test_google_eval_metrics():
    predictions, labels = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert google_eval_metrics(predictions, labels) == {"eval_accuracy": 0.75}
    losses = np.array([0.5, 0.25, 2.0, 0.25])
    assert google_eval_metrics(predictions, labels, losses) == {
        "eval_accuracy": 0.75,
        "eval_loss": 0.75,
    }


def test_unknown_task_and_mismatched_inputs():
    with pytest.raises(UnknownMetricTaskError) as caught:
        hf_glue_metrics("sts-b", [0], [0])
    assert isinstance(caught.value, UserError)
    assert (
        str(caught.value)
        == "no GLUE metrics for task 'sts-b': known tasks are cola, mnli, mrpc, xnli"
    )
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="no predictions"):
        matthews_corrcoef([], [])
