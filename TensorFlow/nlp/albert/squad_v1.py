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
import hashlib
import json
import logging
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from absl import flags

from bertfam.checkpoints import CheckpointError
from bertfam.errors import FlagError, UserError
from bertfam.squad.features import SquadFeatures
from bertfam.squad.run import EVAL_RESULTS_FILE
from bertfam.tf.flags import config_from_flags, define_squad_flags
from bertfam.tf.prepare import PreparedSquad, prepare_squad
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import SHUFFLE_SEED, SquadRunConfig
from bertfam.tf.scripts import TaskScript

log = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^model\.ckpt-(\d+)\.index$")
BEST = "model.ckpt-best"
FEATURE_FORMAT = 1  # bump when the feature arrays or their meaning change


@dataclass(frozen=True, kw_only=True)
class SquadV1RunConfig(SquadRunConfig):
    """run_squad_v1.py's flags: BERT's SQuAD settings plus ALBERT's own."""

    spm_model_file: str
    train_feature_file: Optional[str] = None
    predict_feature_file: Optional[str] = None
    predict_feature_left_file: Optional[str] = None
    save_checkpoints_steps: int = 5000

    @property
    def tokenizer_file(self) -> str:
        return self.spm_model_file


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
    for flag, why in (
        ("albert_hub_module_handle", "TF-Hub modules are not supported: pass --init_checkpoint"),
        ("export_dir", "SavedModel/TFLite export is not supported yet"),
        ("input_file", "pre-generated records are not read: pass --train_feature_file"),
    ):
        if getattr(values, flag):
            raise FlagError(f"--{flag}: {why}")
    if values["do_eval"].present:
        raise FlagError(
            "--do_eval: run_squad_v1.py always scores its predictions (as upstream); drop it"
        )
    values.do_eval = values.do_predict
    if values.train_steps > 0:
        values.num_train_steps = values.train_steps


@dataclass(frozen=True)
class SquadV1Script(TaskScript):
    def config_from_flags(self):
        squad_v1_values(flags.FLAGS)
        return config_from_flags(self.config_class, flags.FLAGS, self.recipe)


def squad_v1_script(recipe: ModelRecipe) -> TaskScript:
    """google-research/albert's ``run_squad_v1.py`` for `recipe`'s span model."""
    define_squad_v1_flags(recipe)
    return SquadV1Script(
        recipe, SquadV1RunConfig, prepare_squad_v1, run_squad_v1, "run_squad_v1.py"
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


def check_vocab_file(vocab_file: str, tokenizer) -> None:
    """``--vocab_file`` (``30k-clean.vocab``: a piece and its score a line) must list the
    SentencePiece model's pieces, in its order."""
    try:
        lines = Path(vocab_file).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FlagError(f"--vocab_file={vocab_file}: cannot read it ({error.strerror})") from None
    pieces = [line.split("\t", 1)[0] for line in lines if line]
    model_pieces = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    if pieces != model_pieces:
        where = next(
            (i for i, (a, b) in enumerate(zip(pieces, model_pieces)) if a != b),
            min(len(pieces), len(model_pieces)),
        )
        raise FlagError(
            f"--vocab_file={vocab_file} does not match --spm_model_file={tokenizer.model_file}"
            f" ({len(pieces)} pieces against {len(model_pieces)}; they differ from piece "
            f"{where}): pass the .vocab that ships with the model"
        )


# -- feature files ------------------------------------------------------------------------


class FeatureCache:
    """Features kept in the files the flags name, for a rerun with the same inputs.

    Each file is a NumPy archive holding some of the `SquadFeatures` arrays and a
    fingerprint of what made them (the SQuAD file, the SentencePiece model, the settings
    and the training flag). A rerun whose fingerprint matches reads them; one whose
    does not rebuilds them, saying so. A file that is not such an archive is refused
    rather than overwritten. Files are replaced whole (written beside, then renamed).
    """

    def __init__(self, parts: Sequence[Tuple[str, Sequence[str]]], fingerprint: str):
        self.parts = [(Path(path), fields) for path, fields in parts]  # (file, its arrays)
        self.fingerprint = fingerprint

    def load_or_build(self, build: Callable[[], SquadFeatures], write: bool) -> SquadFeatures:
        names = ", ".join(str(path) for path, _ in self.parts)
        stored = [self._read(path) for path, _ in self.parts]
        if all(s is not None and str(s.pop("fingerprint")) == self.fingerprint for s in stored):
            log.info("Reusing the features in %s", names)
            return SquadFeatures(**{key: value for s in stored for key, value in s.items()})
        if any(s is not None for s in stored):
            log.warning("%s: written for other inputs or settings; rebuilding", names)
        features = build()
        if write:
            for path, fields in self.parts:
                self._write(path, {key: getattr(features, key) for key in fields})
        return features

    def _read(self, path: Path) -> Optional[Dict[str, np.ndarray]]:
        if feature_file_names(path) is None:
            return None
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}

    def _write(self, path: Path, arrays: Dict[str, np.ndarray]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with open(partial, "wb") as handle:  # a handle: np.savez would append .npz
            np.savez(handle, fingerprint=np.array(self.fingerprint), **arrays)
        os.replace(partial, path)
        log.info("Wrote features to %s", path)


def feature_file_names(path: Path) -> Optional[List[str]]:
    """The arrays a feature file of ours holds (None: no such file); anything else there
    is refused rather than overwritten."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            names = list(stored.files)
    except (OSError, ValueError, EOFError):
        names = []
    if "fingerprint" not in names:
        raise UserError(
            f"{path} exists and is not a feature file of this script: remove it or "
            "name another file"
        )
    return names


def feature_fingerprint(config: SquadV1RunConfig, squad_file: str, is_training: bool) -> str:
    digest = hashlib.sha256()
    for path in (squad_file, config.spm_model_file):
        digest.update(Path(path).read_bytes())
    settings = dict(
        format=FEATURE_FORMAT,
        is_training=is_training,
        shuffle_seed=SHUFFLE_SEED if is_training else None,
        do_lower_case=config.do_lower_case,
        max_seq_length=config.max_seq_length,
        doc_stride=config.doc_stride,
        max_query_length=config.max_query_length,
    )
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


TRAINING_FIELDS = ("input_ids", "input_mask", "segment_ids", "start_positions", "end_positions")
PREDICT_INPUTS = ("unique_ids", "input_ids", "input_mask", "segment_ids")
PREDICT_LEFT = ("example_index", "token_offsets", "token_is_max_context")


def train_features(config, tokenizer, examples, write: bool) -> SquadFeatures:
    build = lambda: config.features(tokenizer, examples, is_training=True)  # noqa: E731
    if not config.train_feature_file:
        return build()
    fields = ("unique_ids", "example_index", *TRAINING_FIELDS)
    cache = FeatureCache(
        [(config.train_feature_file, fields)],
        feature_fingerprint(config, config.train_file, is_training=True),
    )
    return cache.load_or_build(build, write)


def predict_features(config, tokenizer, examples, write: bool) -> SquadFeatures:
    cache = FeatureCache(
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
    import tensorflow as tf  # noqa: F401  (loads here: every input is checked)

    from bertfam.runlog import RunLog
    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.run import plot_training, start_run, starting_weights, train
    from bertfam.tf.squad import TRAINING_ARRAYS, span_loss

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


def named_if_bert(error: CheckpointError, init_checkpoint: Optional[str]) -> CheckpointError:
    """`error`, saying so first when --init_checkpoint is a BERT checkpoint (one
    ``bert/encoder/layer_N`` per layer, where ALBERT shares one)."""
    import tensorflow as tf

    if init_checkpoint and Path(f"{init_checkpoint}.index").is_file():
        names = [name for name, _ in tf.train.list_variables(init_checkpoint)]
        if any(re.match(r"bert/encoder/layer_\d+/", name) for name in names):
            return CheckpointError(
                f"--init_checkpoint={init_checkpoint} is a BERT checkpoint (a "
                "bert/encoder/layer_N per layer), not ALBERT's (one shared "
                f"bert/encoder/transformer/group_0/inner_group_0): {error}"
            )
    return error


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
        steps = self._checkpoint_steps()
        if not steps and not (self.output_dir / f"{BEST}.index").exists():
            # Nothing trained here: score the weights the run started from.
            scores, _ = self._score(None)
            self._write_scores(scores)
            self._write_results()
            return scores
        best_f1, best_step = -1.0, -1
        if (self.output_dir / f"{BEST}.index").exists():
            scores, best_step = self._score(self.output_dir / BEST)
            best_f1 = scores["f1"]
        newest = max(steps, default=None)
        for step in sorted(steps):
            prefix = self.output_dir / f"model.ckpt-{step}"
            if step <= best_step:
                continue
            scores, _ = self._score(prefix)
            self._write_scores(scores)
            if scores["f1"] > best_f1:
                best_f1, best_step = scores["f1"], step
                self._copy_to_best(prefix)
            self.lines.append(f"best f1 = {best_f1}")
            if step != newest:  # scored, and copied if best; the newest stays for a rerun
                self._remove(prefix)
            self.lines.append("=" * 50)
        scores, step = self._score(self.output_dir / BEST)
        log.info("***** Final Eval results *****")
        self._write_scores(scores)
        self.lines.append(f"best perf happened at step: {step}")
        self._write_results(final_newline=False)
        return scores

    def _checkpoint_steps(self) -> List[int]:
        names = os.listdir(self.output_dir) if self.output_dir.is_dir() else []
        return [int(m.group(1)) for m in map(CHECKPOINT.match, names) if m]

    def _score(self, prefix: Optional[Path]) -> Tuple[dict, int]:
        """The EM/F1 of the weights at `prefix` (None: those loaded), writing their
        predictions; and their global step."""
        import tensorflow as tf

        from bertfam.squad.evaluate import evaluate_v1
        from bertfam.squad.postprocess import write_predictions
        from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint

        step = 0
        if prefix is not None:
            weights, description = read_init_checkpoint(str(prefix))
            step = int(tf.train.load_checkpoint(str(prefix)).get_tensor("global_step"))
            # The optimizer's slots are in the checkpoint too: only the model's weights.
            weights = {name: value for name, value in weights.items() if name in self.variables}
            assign_weights(self.variables, weights, description)
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

    def _copy_to_best(self, prefix: Path) -> None:
        for source in sorted(prefix.parent.glob(f"{prefix.name}.*")):
            target = source.with_name(BEST + source.name[len(prefix.name) :])
            shutil.copyfile(source, target.with_name(f".{target.name}.partial"))
            os.replace(target.with_name(f".{target.name}.partial"), target)
            log.info("saving %s to %s", source, target)
            self.lines.append(f"saved {source} to {target}")

    def _remove(self, prefix: Path) -> None:
        for path in prefix.parent.glob(f"{prefix.name}.*"):
            log.info("removing %s", path)
            path.unlink()

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
