"""SQuAD fine-tuning, prediction and evaluation for any TensorFlow span model.

A model folder's ``run_squad.py`` hands its recipe to `bertfam.tf.scripts.squad_script`,
which parses the flags into a `SquadRunConfig`, checks every input with
`bertfam.tf.prepare.prepare_squad` (before TensorFlow loads), and calls
`run_squad(config, prepared, recipe)`; the recipe's ``squad_model(model_config,
bf16_policy)`` returns a tf.Module mapping (input_ids, input_mask, segment_ids,
training) to (start_logits, end_logits). Everything else is the same for BERT,
DistilBERT and ELECTRA and lives here once:

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
from typing import Sequence

import numpy as np
import tensorflow as tf

from bertfam.atomic import write_text
from bertfam.runlog import RunLog, progress
from bertfam.squad.evaluate import evaluate_v1
from bertfam.squad.options import EVAL_RESULTS_FILE
from bertfam.squad.postprocess import write_predictions
from bertfam.tf.checkpoint import variables_by_name
from bertfam.tf.distributed import Workers
from bertfam.tf.flow import plot_training, start_run, starting_weights, train
from bertfam.tf.losses import span_loss
from bertfam.tf.prepare import PreparedSquad
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import SHUFFLE_SEED, SquadRunConfig

log = logging.getLogger(__name__)


def _inputs(batch):
    return batch["input_ids"], batch["input_mask"], batch["segment_ids"]


def run_squad(
    config: SquadRunConfig,
    prepared: PreparedSquad,
    recipe: ModelRecipe,
    fresh_prefixes: Sequence[str] = ("cls/squad/",),
) -> dict:
    """Train / predict / evaluate as the flags say; returns the EM/F1 when evaluating."""
    run = start_run(config, prepared.model_config)
    model = recipe.squad_model(run.model_config, run.precision)
    variables = variables_by_name(model)
    start = starting_weights(config, variables, fresh_prefixes, recipe.checkpoint_table)
    workers = run.workers
    scores: dict = {}
    with RunLog(run.output_dir, enabled=workers.is_main_process) as run_log:
        if config.do_train:
            examples = list(prepared.train_examples)
            random.Random(SHUFFLE_SEED).shuffle(examples)  # as google-research/bert does
            features = config.features(prepared.tokenizer, examples, is_training=True)

            def loss_fn(batch, training):
                start, end = model(*_inputs(batch), training=training)
                return span_loss(start, end, batch["start_positions"], batch["end_positions"]), {}

            arrays = {key: getattr(features, key) for key in TRAINING_ARRAYS}
            train(config, run, variables, loss_fn, arrays, len(examples), run_log, start)
        else:
            start.assign(variables)
        if config.do_predict:
            predictions = _predict(
                config, model, prepared.tokenizer, prepared.predict_examples, workers
            )
            if workers.is_main_process:
                for path in write_predictions(predictions, run.output_dir):
                    log.info("wrote %s", path)
                if config.do_eval:
                    scores = _evaluate(config, predictions.answers, run.output_dir, run_log)
    if workers.is_main_process and config.do_train:
        plot_training(run.output_dir)
    return scores


TRAINING_ARRAYS = ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")


def _predict(config: SquadRunConfig, model, tokenizer, examples, workers: Workers):
    features = config.features(tokenizer, examples, is_training=False)
    log.info("***** Running predictions *****")
    log.info("  Num orig examples = %d, num split examples = %d", len(examples), len(features))
    starts, ends = window_logits(model, features, config.predict_batch_size, workers)
    return config.predictions(examples, features, starts, ends)


def window_logits(model, features, batch_size: int, workers: Workers):
    """(start_logits, end_logits), float [F, L]: the span model on every window."""

    @tf.function(autograph=False)
    def logits(input_ids, input_mask, segment_ids):
        return model(input_ids, input_mask, segment_ids, training=False)

    starts, ends = [], []
    batches = math.ceil(len(features) / batch_size)
    for index in progress(
        range(batches), desc="predict", unit="batch", enabled=workers.is_main_process
    ):
        window = slice(index * batch_size, (index + 1) * batch_size)
        start, end = logits(
            features.input_ids[window], features.input_mask[window], features.segment_ids[window]
        )
        starts.append(start.numpy())
        ends.append(end.numpy())
    return np.concatenate(starts), np.concatenate(ends)


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
