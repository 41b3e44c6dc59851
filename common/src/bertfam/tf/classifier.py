"""GLUE-style fine-tuning, evaluation and prediction for any TensorFlow classifier.

The model folders' ``run_classifier.py`` parse their flags into a `ClassifierRunConfig`,
check every input and build the features with `bertfam.classifier.run.prepare` (before
TensorFlow loads), and call `run_classifier(config, prepared, build_model)`, where
``build_model(bert_config, num_labels, dropout_before_logits, bf16_policy)`` returns a
tf.Module mapping (input_ids, input_mask, segment_ids, training) to float32 logits
[batch, num_labels]. The rest is google-research/bert `run_classifier.py`'s flow:

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
import random
from pathlib import Path
from typing import Callable, Dict, Sequence

import numpy as np
import tensorflow as tf

from bertfam.atomic import write_text
from bertfam.bert_config import BertConfig
from bertfam.classifier.run import (
    EVAL_RESULTS_FILE,
    SHUFFLE_BUFFER,
    SHUFFLE_SEED,
    TEST_RESULTS_FILE,
    ClassifierFlagError,
    ClassifierRunConfig,
    PreparedRun,
    train_steps,
)
from bertfam.glue.features import ClassificationFeatures
from bertfam.glue.metrics import google_eval_metrics
from bertfam.plot_metrics import plot_metrics
from bertfam.runlog import RunLog, progress, read_metrics
from bertfam.tf.bf16 import Bf16Policy
from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint
from bertfam.tf.device import bf16_policy, select_device
from bertfam.tf.distributed import Workers, init_workers
from bertfam.tf.training import TrainConfig, Trainer

log = logging.getLogger(__name__)

HEAD_PREFIXES = ("output_weights", "output_bias")  # Google's top-level classifier head
# Where tf.train.Checkpoint(step=...) in the Trainer stores the update count.
_STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


def classification_loss(logits: tf.Tensor, label_ids: tf.Tensor) -> tf.Tensor:
    """Google's classifier loss: the mean over the batch of the softmax cross-entropy."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(label_ids, logits))


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
    prepared: PreparedRun,
    build_model: Callable[[BertConfig, int, float, Bf16Policy], tf.Module],
    fresh_prefixes: Sequence[str] = HEAD_PREFIXES,
) -> dict:
    """Train / evaluate / predict as the flags say; returns the eval results when evaluating."""
    device = select_device(config.device, config.bf16)
    precision = bf16_policy(device, config.bf16)
    workers = init_workers(config.use_horovod)
    model_config = prepared.model_config
    dropout_before_logits = config.dropout_before_logits
    if config.deterministic_run:
        tf.random.set_seed(config.deterministic_seed)
        np.random.seed(config.deterministic_seed)
        random.seed(config.deterministic_seed)
        model_config = model_config.without_dropout()
        dropout_before_logits = 0.0
    num_labels = len(prepared.label_list)
    model = build_model(model_config, num_labels, dropout_before_logits, precision)
    variables = {v.name.rsplit(":", 1)[0]: v for v in model.trainable_variables}
    output_dir = Path(config.output_dir)
    if workers.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)

    results: dict = {}
    with RunLog(output_dir, enabled=workers.is_main_process) as run_log:
        if config.do_train:
            global_step = _train(
                config, model, variables, prepared.train_features, workers, run_log, fresh_prefixes
            )
        else:
            global_step = _load_for_prediction(config, variables, fresh_prefixes)
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
        _plot(output_dir)
    return results


def _train(
    config: ClassifierRunConfig,
    model,
    variables,
    features: ClassificationFeatures,
    workers: Workers,
    run_log: RunLog,
    fresh_prefixes,
) -> int:
    total_steps = train_steps(config, len(features), workers.size)
    train_config = TrainConfig(
        output_dir=config.output_dir,
        learning_rate=config.learning_rate,
        total_steps=total_steps,
        warmup_steps=int(total_steps * config.warmup_proportion),
        batch_size=config.train_batch_size,
        accumulation_steps=config.num_accumulation_steps,
        save_checkpoints_steps=config.save_checkpoints_steps,
        keep_checkpoint_max=config.keep_checkpoint_max,
        log_every_steps=config.save_summary_steps,
        weight_decay_rate=config.weight_decay_rate,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
    )

    def loss_fn(batch, training):
        logits = model(*_inputs(batch), training=training)
        return classification_loss(logits, batch["label_ids"])

    trainer = Trainer(
        loss_fn,
        variables,
        train_config,
        is_main_process=workers.is_main_process,
        world_size=workers.size,
        allreduce=workers.allreduce,
    )
    if not trainer.restore_latest() and config.init_checkpoint:
        weights, source = read_init_checkpoint(config.init_checkpoint)
        assign_weights(variables, weights, source, fresh_prefixes)
    workers.broadcast_from_rank0(list(variables.values()) + list(trainer.optimizer.variables))
    log.info("***** Running training *****")
    log.info("  Num examples = %d", len(features))
    log.info("  Batch size = %d", config.train_batch_size)
    log.info("  Num steps = %d", total_steps)
    trainer.train(_training_dataset(features, config.train_batch_size, workers), run_log)
    return int(trainer.step)


def _training_dataset(
    features: ClassificationFeatures, per_worker: int, workers: Workers
) -> tf.data.Dataset:
    """Batches in the same order in every run; under Horovod, each worker's rows of them.

    Every worker shuffles and batches the whole set identically at the global batch size
    and keeps its own slice of each batch, so N workers see exactly the batches one process
    sees with N times the batch. (The same scheme as `bertfam.tf.squad._training_dataset`;
    the two belong in one shared helper.)
    """
    dataset = tf.data.Dataset.from_tensor_slices(_arrays(features)).repeat()
    dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=SHUFFLE_SEED)
    dataset = dataset.batch(per_worker * workers.size, drop_remainder=True)
    if workers.size > 1:
        rows = slice(workers.rank * per_worker, (workers.rank + 1) * per_worker)
        dataset = dataset.map(lambda batch: {key: value[rows] for key, value in batch.items()})
    return dataset.prefetch(2)


def _load_for_prediction(config: ClassifierRunConfig, variables, fresh_prefixes) -> int:
    """The run's latest checkpoint, as an Estimator would use, else --init_checkpoint.

    Returns the global step to report: the checkpoint's own, or 0 for a warm start (an
    Estimator evaluating an empty model dir starts its step at 0 too).
    """
    latest = (
        tf.train.latest_checkpoint(config.output_dir) if Path(config.output_dir).is_dir() else None
    )
    source = latest or config.init_checkpoint
    if not source:
        raise ClassifierFlagError(
            "--do_eval / --do_predict without --do_train need trained weights: a checkpoint "
            "in --output_dir or --init_checkpoint"
        )
    weights, description = read_init_checkpoint(source)
    assign_weights(variables, weights, description, () if latest else fresh_prefixes)
    return _checkpoint_step(latest) if latest else 0


def _checkpoint_step(prefix: str) -> int:
    reader = tf.train.load_checkpoint(prefix)
    if reader.has_tensor(_STEP_KEY):
        return int(reader.get_tensor(_STEP_KEY))
    return 0


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

    @tf.function
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

    @tf.function
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


def _plot(output_dir: Path) -> None:
    metrics = output_dir / "metrics.jsonl"
    records = read_metrics(metrics) if metrics.is_file() else []
    if any("loss" in record for record in records):
        plot_metrics(records, output_dir / "metrics.png")
