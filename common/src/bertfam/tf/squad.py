"""SQuAD fine-tuning, prediction and evaluation for any TensorFlow span model.

The model folders' ``run_squad.py`` parse their flags into a `SquadRunConfig`, check
every input with `bertfam.squad.run.prepare` (before TensorFlow loads), and call
`run_squad(config, prepared, build_model)`, where ``build_model(bert_config, bf16_policy)``
returns a tf.Module mapping (input_ids, input_mask, segment_ids, training) to
(start_logits, end_logits).
Everything else is the same for BERT, DistilBERT and ELECTRA and lives here once:

1. train: Google's examples shuffled with Random(12345), windowed features, the shared
   training loop (warm-start from --init_checkpoint, or resume from the latest
   checkpoint in --output_dir);
2. predict: logits for every window, n-best post-processing, ``predictions.json``,
   ``nbest_predictions.json`` (and ``null_odds.json`` for v2.0);
3. evaluate: the official v1.1 EM/F1 of those predictions, printed as
   ``evaluate-v1.1.py`` prints them and written to ``eval_results.txt``.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from bertfam.atomic import write_text
from bertfam.bert_config import BertConfig
from bertfam.plot_metrics import plot_metrics
from bertfam.runlog import RunLog, progress, read_metrics
from bertfam.squad.evaluate import evaluate_v1
from bertfam.squad.features import convert_examples_to_features
from bertfam.squad.postprocess import postprocess_predictions, write_predictions
from bertfam.squad.run import (
    EVAL_RESULTS_FILE,
    EXAMPLE_SHUFFLE_SEED,
    PreparedRun,
    SquadFlagError,
    SquadRunConfig,
)
from bertfam.tf.bf16 import Bf16Policy
from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint
from bertfam.tf.device import bf16_policy, select_device
from bertfam.tf.distributed import Workers, init_workers
from bertfam.tf.training import TrainConfig, Trainer

log = logging.getLogger(__name__)


def span_loss(start_logits, end_logits, start_positions, end_positions) -> tf.Tensor:
    """Google's SQuAD loss: the mean of the start and end cross-entropies."""
    start = tf.nn.sparse_softmax_cross_entropy_with_logits(start_positions, start_logits)
    end = tf.nn.sparse_softmax_cross_entropy_with_logits(end_positions, end_logits)
    return (tf.reduce_mean(start) + tf.reduce_mean(end)) / 2.0


def _inputs(batch):
    return batch["input_ids"], batch["input_mask"], batch["segment_ids"]


def run_squad(
    config: SquadRunConfig,
    prepared: PreparedRun,
    build_model: Callable[[BertConfig, Bf16Policy], tf.Module],
    fresh_prefixes=("cls/squad/",),
) -> dict:
    """Train / predict / evaluate as the flags say; returns the EM/F1 when evaluating."""
    device = select_device(config.device, config.bf16)
    precision = bf16_policy(device, config.bf16)
    workers = init_workers(config.use_horovod)
    model_config = prepared.model_config
    if config.deterministic_run:
        tf.random.set_seed(config.deterministic_seed)
        np.random.seed(config.deterministic_seed)
        random.seed(config.deterministic_seed)
        model_config = model_config.without_dropout()
    model = build_model(model_config, precision)
    variables = {v.name.rsplit(":", 1)[0]: v for v in model.trainable_variables}
    output_dir = Path(config.output_dir)
    if workers.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = prepared.tokenizer
    with RunLog(output_dir, enabled=workers.is_main_process) as run_log:
        if config.do_train:
            examples = prepared.train_examples
            _train(config, model, variables, tokenizer, examples, workers, run_log, fresh_prefixes)
        elif config.do_predict:
            _load_for_prediction(config, variables, fresh_prefixes)
        scores = {}
        if config.do_predict:
            predictions = _predict(config, model, tokenizer, prepared.predict_examples, workers)
            if workers.is_main_process:
                for path in write_predictions(predictions, output_dir):
                    log.info("wrote %s", path)
                if config.do_eval:
                    scores = _evaluate(config, predictions.answers, output_dir, run_log)
    if workers.is_main_process and config.do_train:
        _plot(output_dir)
    return scores


def _train(
    config, model, variables, tokenizer, examples, workers: Workers, run_log, fresh_prefixes
):
    examples = list(examples)
    random.Random(EXAMPLE_SHUFFLE_SEED).shuffle(examples)
    features = convert_examples_to_features(
        examples,
        tokenizer,
        max_seq_length=config.max_seq_length,
        doc_stride=config.doc_stride,
        max_query_length=config.max_query_length,
        is_training=True,
    )
    global_batch = config.train_batch_size * config.num_accumulation_steps * workers.size
    total_steps = (
        int(config.num_train_steps)
        if config.num_train_steps
        else int(len(examples) / global_batch * config.num_train_epochs)
    )
    if total_steps < 1:
        raise SquadFlagError(
            f"{len(examples)} examples at a global batch of {global_batch} give no update: "
            "lower the batch size or raise --num_train_epochs / --num_train_steps"
        )
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
        start, end = model(*_inputs(batch), training=training)
        return span_loss(start, end, batch["start_positions"], batch["end_positions"])

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
    log.info("  Num orig examples = %d, num split examples = %d", len(examples), len(features))
    log.info("  Batch size = %d, num steps = %d", config.train_batch_size, total_steps)
    trainer.train(_training_dataset(features, config, workers), run_log)


def _training_dataset(features, config: SquadRunConfig, workers: Workers) -> tf.data.Dataset:
    """Batches in the same order in every run; under Horovod, each worker's slice of them.

    Every worker shuffles and batches the whole set identically, at the global batch
    size, and keeps its own rows of each batch: together the workers see exactly the
    batches one process would see with the global batch size, which is what makes N
    workers train like one process with N times the batch.
    """
    arrays = {
        "input_ids": features.input_ids,
        "input_mask": features.input_mask,
        "segment_ids": features.segment_ids,
        "start_positions": features.start_positions,
        "end_positions": features.end_positions,
    }
    per_worker = config.train_batch_size
    # A fixed seed gives the same order in every run, so a resumed run can skip exactly
    # the batches it had already trained on.
    dataset = tf.data.Dataset.from_tensor_slices(arrays).repeat()
    dataset = dataset.shuffle(100, seed=EXAMPLE_SHUFFLE_SEED)
    dataset = dataset.batch(per_worker * workers.size, drop_remainder=True)
    if workers.size > 1:
        rows = slice(workers.rank * per_worker, (workers.rank + 1) * per_worker)
        dataset = dataset.map(lambda batch: {key: value[rows] for key, value in batch.items()})
    return dataset.prefetch(2)


def _load_for_prediction(config: SquadRunConfig, variables, fresh_prefixes) -> None:
    """Predict with the run's latest checkpoint, as an Estimator would, else --init_checkpoint."""
    latest = (
        tf.train.latest_checkpoint(config.output_dir) if Path(config.output_dir).is_dir() else None
    )
    source = latest or config.init_checkpoint
    if not source:
        raise SquadFlagError(
            "--do_predict without --do_train needs trained weights: a checkpoint in "
            "--output_dir or --init_checkpoint"
        )
    weights, description = read_init_checkpoint(source)
    assign_weights(variables, weights, description, () if latest else fresh_prefixes)


def _predict(config: SquadRunConfig, model, tokenizer, examples, workers: Workers):
    features = convert_examples_to_features(
        examples,
        tokenizer,
        max_seq_length=config.max_seq_length,
        doc_stride=config.doc_stride,
        max_query_length=config.max_query_length,
        is_training=False,
    )
    log.info("***** Running predictions *****")
    log.info("  Num orig examples = %d, num split examples = %d", len(examples), len(features))

    @tf.function
    def logits(input_ids, input_mask, segment_ids):
        return model(input_ids, input_mask, segment_ids, training=False)

    starts, ends = [], []
    batches = math.ceil(len(features) / config.predict_batch_size)
    for index in progress(
        range(batches), desc="predict", unit="batch", enabled=workers.is_main_process
    ):
        window = slice(index * config.predict_batch_size, (index + 1) * config.predict_batch_size)
        start, end = logits(
            features.input_ids[window], features.input_mask[window], features.segment_ids[window]
        )
        starts.append(start.numpy())
        ends.append(end.numpy())
    return postprocess_predictions(
        examples,
        features,
        np.concatenate(starts),
        np.concatenate(ends),
        n_best_size=config.n_best_size,
        max_answer_length=config.max_answer_length,
        version_2_with_negative=config.version_2_with_negative,
        null_score_diff_threshold=config.null_score_diff_threshold,
    )


def _evaluate(config: SquadRunConfig, answers: dict, output_dir: Path, run_log: RunLog) -> dict:
    with open(config.predict_file, encoding="utf-8") as handle:
        dataset = json.load(handle)
    scores = evaluate_v1(dataset["data"], answers, source=config.predict_file)
    # The line evaluate-v1.1.py prints, so scripts that parse it keep working.
    print(json.dumps(scores), flush=True)
    log.warning("Exact matches %s", scores["exact_match"] / 100.0)
    log.warning("Final accuracy %s", scores["f1"] / 100.0)
    write_text(
        output_dir / EVAL_RESULTS_FILE,
        "".join(f"{key} = {scores[key]}\n" for key in sorted(scores)),
    )
    run_log.log(0, exact_match=scores["exact_match"], f1=scores["f1"])
    return scores


def _plot(output_dir: Path) -> None:
    metrics = output_dir / "metrics.jsonl"
    records = read_metrics(metrics) if metrics.is_file() else []
    if any("loss" in record for record in records):
        plot_metrics(records, output_dir / "metrics.png")
