"""GLUE-style fine-tuning, evaluation and prediction for any TensorFlow classifier.

A model folder's ``run_classifier.py`` hands its recipe to
`bertfam.tf.scripts.classifier_script`, which parses the flags into a
`ClassifierRunConfig`, checks every input and builds the features with
`bertfam.tf.prepare.prepare_classifier` (before TensorFlow loads), and calls
`run_classifier(config, prepared, recipe)`; the recipe's ``classifier_model(model_config,
num_labels, dropout_before_logits, bf16_policy)`` returns a tf.Module mapping
(input_ids, input_mask, segment_ids, training) to float32 logits [batch, num_labels].
The rest is google-research/bert `run_classifier.py`'s flow:

1. train: mean softmax cross-entropy, the shared training loop (warm-start from
   --init_checkpoint, or resume from the latest checkpoint in --output_dir);
2. evaluate on the dev set: ``eval_results.txt`` with ``accuracy``, ``global_step`` and
   ``loss`` (the mean cross-entropy), keys sorted, as Habana's copy writes it;
3. predict on the test set: ``test_results.tsv``, one line of tab-separated class
   probabilities per example.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

from bertfam.atomic import write_text
from bertfam.glue.features import ClassificationFeatures
from bertfam.glue.metrics import google_eval_metrics
from bertfam.runlog import RunLog, progress
from bertfam.tf.checkpoint import variables_by_name
from bertfam.tf.distributed import Workers
from bertfam.tf.flow import plot_training, start_run, starting_weights, train
from bertfam.tf.losses import classification_loss
from bertfam.tf.prepare import PreparedClassifier
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import ClassifierRunConfig

log = logging.getLogger(__name__)

HEAD_PREFIXES = ("output_weights", "output_bias")  # Google's top-level classifier head
EVAL_RESULTS_FILE = "eval_results.txt"
TEST_RESULTS_FILE = "test_results.tsv"


def _inputs(arrays):
    return arrays["input_ids"], arrays["input_mask"], arrays["segment_ids"]


def _arrays(features: ClassificationFeatures) -> Dict[str, np.ndarray]:
    return {
        "input_ids": features.input_ids,
        "input_mask": features.input_mask,
        "segment_ids": features.segment_ids,
        "label_ids": features.label_ids,
    }


def run_classifier(
    config: ClassifierRunConfig,
    prepared: PreparedClassifier,
    recipe: ModelRecipe,
    fresh_prefixes: Sequence[str] = HEAD_PREFIXES,
) -> dict:
    """Train / evaluate / predict as the flags say; returns the eval results when evaluating."""
    run = start_run(config, prepared.model_config)
    dropout_before_logits = 0.0 if config.deterministic_run else config.dropout_before_logits
    num_labels = len(prepared.label_list)
    model = recipe.classifier_model(
        run.model_config, num_labels, dropout_before_logits, run.precision
    )
    variables = variables_by_name(model)
    start = starting_weights(config, variables, fresh_prefixes, recipe.checkpoint_table)
    workers, output_dir = run.workers, run.output_dir

    results: dict = {}
    with RunLog(output_dir, enabled=workers.is_main_process) as run_log:
        if config.do_train:

            def loss_fn(batch, training):
                logits = model(*_inputs(batch), training=training)
                return classification_loss(logits, batch["label_ids"]), {}

            features = prepared.train_features
            global_step = train(
                config, run, variables, loss_fn, _arrays(features), len(features), run_log, start
            )
        else:
            start.assign(variables)
            global_step = start.step
        if config.do_eval:
            results = _evaluate(config, model, prepared.eval_features, global_step, workers)
            if workers.is_main_process:
                _write_eval_results(results, output_dir)
                run_log.log(
                    global_step, eval_accuracy=results["accuracy"], eval_loss=results["loss"]
                )
        if config.do_predict:
            probabilities = _predict(config, model, prepared.predict_features, workers)
            if workers.is_main_process:
                _write_test_results(probabilities, output_dir)
    if workers.is_main_process and config.do_train:
        plot_training(output_dir)
    return results


def _batched(
    fn: Callable, features: ClassificationFeatures, batch_size: int, desc: str, workers: Workers
) -> tuple:
    """`fn` over every example, `batch_size` at a time (the last batch may be smaller)."""
    arrays = _arrays(features)
    outputs = []
    batches = math.ceil(len(features) / batch_size)
    for index in progress(range(batches), desc=desc, unit="batch", enabled=workers.is_main_process):
        window = slice(index * batch_size, (index + 1) * batch_size)
        outputs.append([t.numpy() for t in fn({k: v[window] for k, v in arrays.items()})])
    return tuple(np.concatenate(parts) for parts in zip(*outputs))


def _evaluate(
    config: ClassifierRunConfig,
    model,
    features: ClassificationFeatures,
    global_step: int,
    workers: Workers,
) -> dict:
    log.info("***** Running evaluation *****")
    log.info("  Num examples = %d", len(features))
    log.info("  Batch size = %d", config.eval_batch_size)

    @tf.function(autograph=False)
    def logits_and_losses(batch):
        logits = model(*_inputs(batch), training=False)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(batch["label_ids"], logits)
        return logits, losses

    logits, losses = _batched(logits_and_losses, features, config.eval_batch_size, "eval", workers)
    metrics = google_eval_metrics(np.argmax(logits, axis=-1), features.label_ids, losses)
    # Habana's copy reports Google's eval_accuracy and eval_loss as accuracy and loss.
    return {
        "accuracy": metrics["eval_accuracy"],
        "global_step": global_step,
        "loss": metrics["eval_loss"],
    }


def _write_eval_results(results: dict, output_dir: Path) -> None:
    text = "".join(f"{key} = {results[key]}\n" for key in sorted(results))
    log.info("***** Eval results *****")
    print(text, end="", flush=True)
    write_text(output_dir / EVAL_RESULTS_FILE, text)


def _predict(
    config: ClassifierRunConfig,
    model,
    features: ClassificationFeatures,
    workers: Workers,
) -> np.ndarray:
    log.info("***** Running prediction *****")
    log.info("  Num examples = %d", len(features))
    log.info("  Batch size = %d", config.predict_batch_size)

    @tf.function(autograph=False)
    def probabilities(batch):
        return (tf.nn.softmax(model(*_inputs(batch), training=False), axis=-1),)

    if len(features) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    (result,) = _batched(probabilities, features, config.predict_batch_size, "predict", workers)
    return result


def _write_test_results(probabilities: np.ndarray, output_dir: Path) -> None:
    # str() of each float32, as Google writes str(class_probability).
    lines = ["\t".join(str(p) for p in row) + "\n" for row in probabilities]
    write_text(output_dir / TEST_RESULTS_FILE, "".join(lines))
    log.info("wrote %s (%d examples)", output_dir / TEST_RESULTS_FILE, len(lines))
