"""google-research/albert's run_squad_v1.py on the shared SQuAD pieces.

What differs from BERT's run_squad.py (`bertfam.tf.squad`), as upstream does it:

- flags: ``--albert_config_file`` and ``--spm_model_file`` (required; ``--vocab_file``
  is optional and, when given, must be the model's own ``30k-clean.vocab``),
  ``--train_steps``, the three feature-file flags, and no ``--do_eval``: predicting always
  scores the predictions;
- every checkpoint of the run is kept, then evaluated in step order; the best F1 is copied
  to ``model.ckpt-best.*`` and the other evaluated ones are removed (but the newest, which a
  rerun resumes from); ``eval_results.txt`` is upstream's record of that (each
  checkpoint's ``exact_match``/``f1``, ``saved <src> to <tgt>``, ``best f1 = ...``,
  separators, the best checkpoint's scores and ``best perf happened at step: N``), and
  ``predictions.json`` / ``nbest_predictions.json`` are the best checkpoint's;
- answers are ranked by the sum of the start and end log-probabilities (log-softmax over
  each window) and ``nbest_predictions.json`` gives ``start_log_prob``/``end_log_prob``.

Where ours differs: upstream accepts the feature-file flags and never reads them (it
writes training features to ``<output_dir>/train.tf_record``); here they do what their
names say (`FeatureCache`). ``--albert_hub_module_handle``, ``--export_dir`` and
``--input_file`` are refused with one line; ``--use_einsum`` changes nothing (einsum and
reshape-matmul compute the same dense layers).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from absl import flags
from best_checkpoint import (
    BEST,
    checkpoint_steps,
    copy_to_best,
    has_best,
    load_weights,
    remove_checkpoint,
)
from checks import check_vocab_file, named_if_bert
from feature_cache import FeatureCache, feature_file_names, fingerprint

from bertfam.checkpoint_names import TF_MODEL
from bertfam.checkpoints import CheckpointError
from bertfam.errors import FlagError, refuse_given
from bertfam.squad.features import SquadFeatures
from bertfam.squad.options import EVAL_RESULTS_FILE
from bertfam.tf.flags import define_squad_flags
from bertfam.tf.prepare import PreparedSquad, prepare_squad
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import SHUFFLE_SEED, SquadRunConfig
from bertfam.tf.scripts import TaskScript

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SquadV1RunConfig(SquadRunConfig):
    """run_squad_v1.py's flags: BERT's SQuAD settings plus ALBERT's own."""

    spm_model_file: str
    train_feature_file: Optional[str] = None
    predict_feature_file: Optional[str] = None
    predict_feature_left_file: Optional[str] = None
    save_checkpoints_steps: int = 5000
    # Upstream's Estimator keeps every checkpoint; predicting scores each and keeps the best.
    keep_checkpoint_max: int = 0


def define_squad_v1_flags(recipe: ModelRecipe) -> None:
    define_squad_flags()
    f = flags
    f.DEFINE_string(recipe.config_flag, None, "ALBERT's albert_config.json (architecture).")
    f.DEFINE_string("spm_model_file", None, "The SentencePiece model, 30k-clean.model.")
    f.DEFINE_string("train_feature_file", None, "Training features: written, then reused.")
    f.DEFINE_string("predict_feature_file", None, "Prediction inputs: written, then reused.")
    f.DEFINE_string(
        "predict_feature_left_file", None, "Prediction windows' answer maps: written, reused."
    )
    f.DEFINE_integer("train_steps", -1, "If > 0, the number of updates, overriding epochs.")
    f.DEFINE_string("albert_hub_module_handle", None, "TF-Hub modules: not supported (refused).")
    f.DEFINE_string("input_file", None, "Not supported: use --train_feature_file (refused).")
    f.DEFINE_string("export_dir", None, "SavedModel/TFLite export: not supported yet (refused).")
    f.DEFINE_bool("use_einsum", False, "Upstream's dense-layer variant: the same results here.")
    f.FLAGS.set_default("save_checkpoints_steps", 5000)
    for name in ("spm_model_file", recipe.config_flag, "output_dir"):
        f.mark_flag_as_required(name)


def squad_v1_values(values) -> None:
    """Refuse what upstream accepts but we do not do; fold ALBERT's names into ours."""
    refuse_given(
        values,
        {
            "albert_hub_module_handle": "TF-Hub modules are not supported: pass --init_checkpoint",
            "export_dir": "SavedModel/TFLite export is not supported yet",
            "input_file": "pre-generated records are not read: pass --train_feature_file",
        },
    )
    if values["do_eval"].present:
        raise FlagError(
            "--do_eval: run_squad_v1.py always scores its predictions (as upstream); drop it"
        )
    values.do_eval = values.do_predict
    if values.train_steps > 0:
        values.num_train_steps = values.train_steps


def squad_v1_script(recipe: ModelRecipe) -> TaskScript:
    """google-research/albert's ``run_squad_v1.py`` for `recipe`'s span model."""
    define_squad_v1_flags(recipe)
    return TaskScript(
        recipe,
        SquadV1RunConfig,
        prepare_squad_v1,
        run_squad_v1,
        "run_squad_v1.py",
        fold_flags=squad_v1_values,
        renamed={"spm_model_file": "tokenizer_file"},
    )


# -- inputs -------------------------------------------------------------------------------


def prepare_squad_v1(config: SquadV1RunConfig, recipe: ModelRecipe) -> PreparedSquad:
    if config.do_predict and not (config.predict_feature_file and config.predict_feature_left_file):
        raise FlagError("--do_predict needs --predict_feature_file and --predict_feature_left_file")
    for path in (
        config.train_feature_file,
        config.predict_feature_file,
        config.predict_feature_left_file,
    ):
        if path:
            feature_file_names(Path(path))  # before TensorFlow loads: one line if not ours
    prepared = prepare_squad(config, recipe)
    if config.vocab_file:
        check_vocab_file(config.vocab_file, prepared.tokenizer)
    return prepared


# -- feature files ------------------------------------------------------------------------


def feature_fingerprint(config: SquadV1RunConfig, squad_file: str, is_training: bool) -> str:
    return fingerprint(
        [squad_file, config.spm_model_file],
        dict(
            is_training=is_training,
            shuffle_seed=SHUFFLE_SEED if is_training else None,
            do_lower_case=config.do_lower_case,
            max_seq_length=config.max_seq_length,
            doc_stride=config.doc_stride,
            max_query_length=config.max_query_length,
        ),
    )


TRAINING_FIELDS = ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")
PREDICT_INPUTS = ("unique_ids", "input_ids", "input_mask", "segment_ids")
PREDICT_LEFT = ("example_index", "token_offsets", "token_is_max_context")


def train_features(config, tokenizer, examples, write: bool) -> SquadFeatures:
    build = lambda: config.features(tokenizer, examples, is_training=True)  # noqa: E731
    if not config.train_feature_file:
        return build()
    fields = ("unique_ids", "example_index", *TRAINING_FIELDS)
    cache = FeatureCache(
        SquadFeatures,
        [(config.train_feature_file, fields)],
        feature_fingerprint(config, config.train_file, is_training=True),
    )
    return cache.load_or_build(build, write)


def predict_features(config, tokenizer, examples, write: bool) -> SquadFeatures:
    cache = FeatureCache(
        SquadFeatures,
        [
            (config.predict_feature_file, PREDICT_INPUTS),
            (config.predict_feature_left_file, PREDICT_LEFT),
        ],
        feature_fingerprint(config, config.predict_file, is_training=False),
    )
    return cache.load_or_build(
        lambda: config.features(tokenizer, examples, is_training=False), write
    )


# -- the flow -----------------------------------------------------------------------------


def run_squad_v1(config: SquadV1RunConfig, prepared: PreparedSquad, recipe: ModelRecipe):
    # TensorFlow loads with these, once every input is checked.
    from bertfam.runlog import RunLog
    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.flow import plot_training, start_run, starting_weights, train
    from bertfam.tf.losses import span_loss
    from bertfam.tf.squad import TRAINING_ARRAYS

    run = start_run(config, prepared.model_config)
    model = recipe.squad_model(run.model_config, run.precision)
    variables = variables_by_name(model)
    try:
        start = starting_weights(config, variables, ("cls/squad/",), recipe.checkpoint_table)
    except CheckpointError as error:
        raise named_if_bert(error, config.init_checkpoint) from None
    workers = run.workers
    total_steps = None
    with RunLog(run.output_dir, enabled=workers.is_main_process) as run_log:
        if config.do_train:
            examples = list(prepared.train_examples)
            random.Random(SHUFFLE_SEED).shuffle(examples)  # as google-research/albert does
            features = train_features(
                config, prepared.tokenizer, examples, write=workers.is_main_process
            )

            def loss_fn(batch, training):
                start_logits, end_logits = model(
                    batch["input_ids"], batch["input_mask"], batch["segment_ids"], training
                )
                loss = span_loss(
                    start_logits, end_logits, batch["start_positions"], batch["end_positions"]
                )
                return loss, {}

            arrays = {key: getattr(features, key) for key in TRAINING_ARRAYS}
            total_steps = train(
                config, run, variables, loss_fn, arrays, len(examples), run_log, start
            )
        elif start is not None:
            start.assign(variables)
        if config.do_predict and workers.is_main_process:
            evaluation = CheckpointEvaluation(config, prepared, model, variables, run_log)
            evaluation.run(workers)
    if workers.is_main_process and config.do_train:
        plot_training(run.output_dir)
    return total_steps


class CheckpointEvaluation:
    """Upstream's predict loop: score each checkpoint in step order, keep the best as
    ``model.ckpt-best``, and finish with the best one's predictions and scores."""

    def __init__(self, config, prepared, model, variables, run_log):
        self.config = config
        self.prepared = prepared
        self.model = model
        self.variables = variables
        self.run_log = run_log
        self.output_dir = Path(config.output_dir)
        self.lines: List[str] = []
        with open(config.predict_file, encoding="utf-8") as handle:
            self.dataset = json.load(handle)["data"]

    def run(self, workers) -> dict:
        examples = self.prepared.predict_examples
        self.features = predict_features(self.config, self.prepared.tokenizer, examples, write=True)
        log.info("***** Running predictions *****")
        log.info(
            "  Num orig examples = %d, num split examples = %d", len(examples), len(self.features)
        )
        self.workers = workers
        steps = checkpoint_steps(self.output_dir)
        if not steps and not has_best(self.output_dir):
            # Nothing trained here: score the weights the run started from.
            scores, _ = self._score(None)
            self._write_scores(scores)
            self._write_results()
            return scores
        best_f1, best_step = -1.0, -1
        if has_best(self.output_dir):
            scores, best_step = self._score(self.output_dir / BEST)
            best_f1 = scores["f1"]
        newest = max(steps, default=None)
        for step in steps:
            prefix = TF_MODEL.path(self.output_dir, step)
            if step <= best_step:
                continue
            scores, _ = self._score(prefix)
            self._write_scores(scores)
            if scores["f1"] > best_f1:
                best_f1, best_step = scores["f1"], step
                for source, target in copy_to_best(prefix):
                    self.lines.append(f"saved {source} to {target}")
            self.lines.append(f"best f1 = {best_f1}")
            if step != newest:  # scored, and copied if best; the newest stays for a rerun
                remove_checkpoint(prefix)
            self.lines.append("=" * 50)
        scores, step = self._score(self.output_dir / BEST)
        log.info("***** Final Eval results *****")
        self._write_scores(scores)
        self.lines.append(f"best perf happened at step: {step}")
        self._write_results(final_newline=False)
        return scores

    def _score(self, prefix: Optional[Path]) -> Tuple[dict, int]:
        """The EM/F1 of the weights at `prefix` (None: those loaded), writing their
        predictions; and their global step."""
        from bertfam.squad.evaluate import evaluate_v1
        from bertfam.squad.postprocess import write_predictions

        step = 0 if prefix is None else load_weights(prefix, self.variables)
        predictions = self._predictions()
        for path in write_predictions(predictions, self.output_dir):
            log.info("wrote %s", path)
        scores = evaluate_v1(self.dataset, predictions.answers, source=self.config.predict_file)
        log.info("  exact_match = %s, f1 = %s (%s)", scores["exact_match"], scores["f1"], prefix)
        self.run_log.log(step, exact_match=scores["exact_match"], f1=scores["f1"])
        return scores, step

    def _predictions(self):
        from bertfam.tf.squad import window_logits

        starts, ends = window_logits(
            self.model, self.features, self.config.predict_batch_size, self.workers
        )
        predictions = self.config.predictions(
            self.prepared.predict_examples, self.features, log_softmax(starts), log_softmax(ends)
        )
        nbest = {
            qas_id: [_as_log_probs(entry) for entry in entries]
            for qas_id, entries in predictions.nbest.items()
        }
        return dataclasses.replace(predictions, nbest=nbest)

    def _write_scores(self, scores: dict) -> None:
        for key in sorted(scores):
            self.lines.append(f"{key} = {scores[key]}")

    def _write_results(self, final_newline: bool = True) -> None:
        from bertfam.atomic import write_text

        text = "\n".join(self.lines) + ("\n" if final_newline else "")
        write_text(self.output_dir / EVAL_RESULTS_FILE, text)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Over each window's positions, in float64 (as upstream's log-probabilities)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _as_log_probs(entry: dict) -> dict:
    """An n-best entry under ALBERT's names: its scores are log-probabilities."""
    return {
        "text": entry["text"],
        "probability": entry["probability"],
        "start_log_prob": entry["start_logit"],
        "end_log_prob": entry["end_logit"],
    }
