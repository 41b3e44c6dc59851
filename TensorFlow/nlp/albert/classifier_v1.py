"""google-research/albert's run_classifier.py on the shared GLUE pieces.

What differs from BERT's run_classifier.py (`bertfam.tf.classifier`), as upstream does it:

- flags: ``--albert_config_file``, ``--spm_model_file`` (``--vocab_file`` optional, and
  then checked against it), ``--train_step`` updates with ``--warmup_step`` warm-up
  updates (no epochs), ``--max_seq_length`` 512, ``--cached_dir``, ``--optimizer``
  (``adamw``, or ``lamb``: google-research/albert's, `bertfam.tf.optimization.GoogleLamb`);
- evaluation scores every kept checkpoint in step order: ``eval_results.txt`` holds each
  one's ``eval_accuracy``, ``eval_loss`` (mean over examples), ``global_step`` and
  ``loss`` (mean over batches), CoLA's ``matthew_corr`` too (STS-B, a regression:
  ``pearson``, ``MSE``, ``eval_loss``, ``global_step``, ``loss``), then ``best = <best so
  far>`` and a separator; ``best_trial.txt`` is ``<global_step>:<best step>:<best
  value>`` (the value: Pearson's r for STS-B, Matthews' correlation for CoLA, else the
  accuracy); the best becomes ``model.ckpt-best``;
- prediction uses ``model.ckpt-best`` (else the run's weights) and writes
  ``test_results.tsv`` (class probabilities; STS-B's score) and ``submit_results.tsv``
  (``index``, ``prediction``: each test row's id, its first column, and the predicted
  label or score);
- ``--data_dir`` is the GLUE download, holding the task's folder (``MRPC/``...); the
  task's folder itself is taken too.

Where ours differs: STS-B's blocks leave out upstream's ``pred`` and ``label_ids`` (every
prediction and label of the dev set, printed as arrays). ``--cached_dir`` features carry
a fingerprint and are rebuilt when the data or settings change (upstream reuses whatever
file is there). ``--keep_checkpoint_max`` keeps that many checkpoints while training, as
its name says (upstream's Estimator ignores it and keeps all).
``--albert_hub_module_handle`` and ``--export_dir`` are refused with one line.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

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
from bertfam.errors import FlagError, UserError, refuse_given
from bertfam.glue.features import ClassificationFeatures
from bertfam.glue.metrics import accuracy, matthews_corrcoef
from bertfam.glue.readers import GLUE_PROCESSORS, get_processor, read_tsv
from bertfam.tf.flags import define_classifier_flags
from bertfam.tf.prepare import PreparedClassifier, prepare_classifier
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import ClassifierRunConfig
from bertfam.tf.scripts import TaskScript

log = logging.getLogger(__name__)

# google-research/albert's task names, and the folder of the GLUE download each reads.
TASK_FOLDERS = {
    "cola": "CoLA",
    "mnli": "MNLI",
    "mismnli": "MNLI",
    "mrpc": "MRPC",
    "rte": "RTE",
    "sst-2": "SST-2",
    "sts-b": "STS-B",
    "qqp": "QQP",
    "qnli": "QNLI",
    "wnli": "WNLI",
}
ALBERT_TASKS = tuple(TASK_FOLDERS)

EVAL_RESULTS_FILE = "eval_results.txt"
BEST_TRIAL_FILE = "best_trial.txt"
TEST_RESULTS_FILE = "test_results.tsv"
SUBMIT_RESULTS_FILE = "submit_results.tsv"
HEAD_PREFIXES = ("output_weights", "output_bias")


@dataclass(frozen=True, kw_only=True)
class ClassifierV1RunConfig(ClassifierRunConfig):
    """run_classifier.py's flags: the shared GLUE settings plus ALBERT's own."""

    spm_model_file: str
    cached_dir: Optional[str] = None
    train_step: int = 1000
    warmup_step: int = 0
    optimizer: str = "adamw"  # or "lamb": google-research/albert's LAMB
    max_seq_length: int = 512
    save_checkpoints_steps: int = 5000

    @property
    def is_regression(self) -> bool:
        return self.task_name.lower() == "sts-b"

    @property
    def key_metric(self) -> str:
        """What picks the best checkpoint, as upstream: Pearson's r for STS-B, Matthews'
        correlation for CoLA, else accuracy."""
        task = self.task_name.lower()
        return {"sts-b": "pearson", "cola": "matthew_corr"}.get(task, "eval_accuracy")


def define_classifier_v1_flags(recipe: ModelRecipe) -> None:
    define_classifier_flags()
    f = flags
    f.DEFINE_string(recipe.config_flag, None, "ALBERT's albert_config.json (architecture).")
    f.DEFINE_string("spm_model_file", None, "The SentencePiece model, 30k-clean.model.")
    f.DEFINE_string("cached_dir", None, "Where <task>_{train,eval}.tf_record features are kept.")
    f.DEFINE_integer("train_step", 1000, "Updates to train for.")
    f.DEFINE_integer("warmup_step", 0, "Updates of linear warm-up.")
    f.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept while training (0: all).")
    f.DEFINE_string("optimizer", "adamw", "adamw or lamb (google-research/albert's LAMB).")
    f.DEFINE_string("albert_hub_module_handle", None, "TF-Hub modules: not supported (refused).")
    f.DEFINE_string("export_dir", None, "SavedModel export: not supported yet (refused).")
    f.DEFINE_float("threshold_to_export", float("nan"), "Export threshold (with --export_dir).")
    f.FLAGS.set_default("max_seq_length", 512)
    f.FLAGS.set_default("save_checkpoints_steps", 5000)
    for name in ("data_dir", "task_name", "spm_model_file", recipe.config_flag, "output_dir"):
        f.mark_flag_as_required(name)


def classifier_v1_values(values) -> None:
    """Refuse what upstream accepts but we do not do; fold ALBERT's names into ours."""
    task = values.task_name.lower()
    if task not in ALBERT_TASKS:
        raise FlagError(f"--task_name={values.task_name}: not one of {', '.join(ALBERT_TASKS)}")
    refuse_given(
        values,
        {
            "albert_hub_module_handle": "TF-Hub modules are not supported: pass --init_checkpoint",
            "export_dir": "SavedModel export is not supported yet",
        },
    )
    if not math.isnan(values.threshold_to_export):
        raise FlagError("--threshold_to_export applies to --export_dir, which is not supported")
    if values.optimizer not in ("adamw", "lamb"):
        raise FlagError(f"--optimizer={values.optimizer}: adamw or lamb")
    if values["num_train_epochs"].present or values["num_train_steps"].present:
        raise FlagError("ALBERT's run_classifier.py trains --train_step updates: use that")
    if values.train_step < 1 or values.warmup_step < 0 or values.warmup_step > values.train_step:
        raise FlagError(
            f"--train_step={values.train_step} --warmup_step={values.warmup_step}: need "
            "train_step >= 1 and 0 <= warmup_step <= train_step"
        )
    values.num_train_steps = values.train_step
    # Upstream's --data_dir is the GLUE download (MRPC/, CoLA/, ...); the task's own folder
    # works too, as BERT's script takes it.
    task_dir = Path(values.data_dir) / TASK_FOLDERS[task]
    if task_dir.is_dir():
        values.data_dir = str(task_dir)


def classifier_v1_script(recipe: ModelRecipe) -> TaskScript:
    """google-research/albert's ``run_classifier.py`` for `recipe`'s classifier."""
    define_classifier_v1_flags(recipe)
    return TaskScript(
        recipe,
        ClassifierV1RunConfig,
        prepare_classifier_v1,
        run_classifier_v1,
        "run_classifier.py",
        fold_flags=classifier_v1_values,
        renamed={"spm_model_file": "tokenizer_file", "warmup_step": "num_warmup_steps"},
    )


# -- inputs -------------------------------------------------------------------------------


def prepare_classifier_v1(config: ClassifierV1RunConfig, recipe: ModelRecipe):
    for split in ("train", "eval"):
        feature_file_names(cached_file(config, split))  # one line, before TensorFlow
    prepared = prepare_classifier(
        config, recipe, features_for=cached_features(config), processors=GLUE_PROCESSORS
    )
    if config.vocab_file:
        check_vocab_file(config.vocab_file, prepared.tokenizer)
    return prepared


def cached_file(config: ClassifierV1RunConfig, split: str) -> Path:
    """Upstream's ``<cached_dir or output_dir>/<task>_<split>.tf_record``."""
    folder = Path(config.cached_dir or config.output_dir)
    return folder / f"{config.task_name.lower()}_{split}.tf_record"


def cached_features(config: ClassifierV1RunConfig):
    """The train and eval features through their cache files (predict's are not kept, as
    upstream rewrites predict.tf_record every run)."""

    def features_for(split: str, examples: list, build) -> ClassificationFeatures:
        if split == "predict":
            return build()
        made_of = json.dumps(
            [[e.guid, e.text_a, e.text_b, e.label] for e in examples], ensure_ascii=False
        )
        settings = dict(
            examples=made_of,
            do_lower_case=config.do_lower_case,
            max_seq_length=config.max_seq_length,
        )
        cache = FeatureCache(
            ClassificationFeatures,
            [(str(cached_file(config, split)), ClassificationFeatures.__annotations__)],
            fingerprint([config.spm_model_file], settings),
        )
        return cache.load_or_build(build, write=True)

    return features_for


# -- the flow -----------------------------------------------------------------------------


def run_classifier_v1(
    config: ClassifierV1RunConfig, prepared: PreparedClassifier, recipe: ModelRecipe
):
    import tensorflow as tf

    from bertfam.runlog import RunLog
    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.flow import plot_training, start_run, starting_weights, train
    from bertfam.tf.losses import classification_loss
    from bertfam.tf.optimization import adamw, google_lamb

    run = start_run(config, prepared.model_config)
    dropout_before_logits = 0.0 if config.deterministic_run else config.dropout_before_logits
    model = recipe.classifier_model(
        run.model_config, len(prepared.label_list), dropout_before_logits, run.precision
    )
    variables = variables_by_name(model)
    try:
        start = starting_weights(config, variables, HEAD_PREFIXES, recipe.checkpoint_table)
    except CheckpointError as error:
        raise named_if_bert(error, config.init_checkpoint) from None
    workers, output_dir = run.workers, run.output_dir

    @tf.function(autograph=False)
    def logits_of(input_ids, input_mask, segment_ids):
        return model(input_ids, input_mask, segment_ids, training=False)

    with RunLog(output_dir, enabled=workers.is_main_process) as run_log:
        if config.do_train:

            def loss_fn(batch, training):
                logits = model(
                    batch["input_ids"], batch["input_mask"], batch["segment_ids"], training
                )
                if config.is_regression:  # upstream's STS-B: the mean squared error
                    error = tf.squeeze(logits, -1) - tf.cast(batch["label_ids"], tf.float32)
                    return tf.reduce_mean(tf.square(error)), {}
                return classification_loss(logits, batch["label_ids"]), {}

            features = prepared.train_features
            arrays = {key: getattr(features, key) for key in ClassificationFeatures.__annotations__}
            optimizer = google_lamb if config.optimizer == "lamb" else adamw
            train(config, run, variables, loss_fn, arrays, len(features), run_log, start, optimizer)
        elif start is not None:
            start.assign(variables)
        if workers.is_main_process and config.do_eval:
            evaluation = BestTrial(config, prepared.eval_features, logits_of, variables)
            for step, result in evaluation.run():
                run_log.log(step, **{k: v for k, v in result.items() if k != "global_step"})
        if workers.is_main_process and config.do_predict:
            if has_best(output_dir):
                load_weights(output_dir / BEST, variables)
            write_predictions(config, prepared, logits_of)
    if workers.is_main_process and config.do_train:
        plot_training(output_dir)


def batched_logits(logits_of, features: ClassificationFeatures, batch_size: int) -> List:
    """Per batch (the last may be smaller), the logits of `features`, as NumPy."""
    batches = []
    for begin in range(0, len(features), batch_size):
        window = slice(begin, begin + batch_size)
        logits = logits_of(
            features.input_ids[window], features.input_mask[window], features.segment_ids[window]
        )
        batches.append(logits.numpy().astype(np.float64))
    return batches


def scores(config: ClassifierV1RunConfig, features, logits_of, global_step: int) -> dict:
    """What upstream's Estimator evaluation reports for one checkpoint."""
    batches = batched_logits(logits_of, features, config.eval_batch_size)
    logits = np.concatenate(batches)
    labels = features.label_ids
    if config.is_regression:
        predictions = logits[:, 0]
        losses = (predictions - labels.astype(np.float64)) ** 2
    else:
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        losses = -log_probs[np.arange(len(labels)), labels]
        predictions = logits.argmax(axis=-1)
    ends = np.cumsum([len(batch) for batch in batches])
    batch_means = [part.mean() for part in np.split(losses, ends[:-1])]
    result = {
        "eval_loss": float(losses.mean()),
        "global_step": global_step,
        "loss": float(np.mean(batch_means)),  # the Estimator's: the mean of batch means
    }
    if config.is_regression:
        result["pearson"] = float(np.corrcoef(predictions, labels)[0, 1])
        result["MSE"] = float(losses.mean())
        return result
    result["eval_accuracy"] = accuracy(predictions, labels)
    if config.task_name.lower() == "cola":
        result["matthew_corr"] = matthews_corrcoef(predictions, labels)
    return result


class BestTrial:
    """Upstream's eval loop: every checkpoint after the last one scored (best_trial.txt),
    in step order; the best becomes ``model.ckpt-best``, the others are removed but the
    newest (a rerun resumes from it)."""

    def __init__(self, config, features, logits_of, variables):
        self.config = config
        self.features = features
        self.logits_of = logits_of
        self.variables = variables
        self.output_dir = Path(config.output_dir)

    def run(self):
        """Yields (step, result) for each checkpoint scored."""
        from bertfam.atomic import write_text

        last_step, best_step, best_value = self._read_best_trial()
        steps = checkpoint_steps(self.output_dir)
        lines: List[str] = []
        if not steps:  # nothing trained here: the weights the run started from
            result = scores(self.config, self.features, self.logits_of, 0)
            lines += [f"{key} = {result[key]}" for key in sorted(result)]
            write_text(self.output_dir / EVAL_RESULTS_FILE, "\n".join(lines) + "\n")
            yield 0, result
            return
        newest = steps[-1]
        for step in steps:
            if step <= last_step:
                continue
            prefix = TF_MODEL.path(self.output_dir, step)
            global_step = load_weights(prefix, self.variables)
            result = scores(self.config, self.features, self.logits_of, global_step)
            lines += [f"{key} = {result[key]}" for key in sorted(result)]
            lines.append(f"best = {best_value}")  # the best before this one, as upstream
            if result[self.config.key_metric] > best_value:
                best_value, best_step = result[self.config.key_metric], global_step
                copy_to_best(prefix)
            if step != newest:
                remove_checkpoint(prefix)
            lines.append("=" * 50)
            last_step = global_step
            write_text(self.output_dir / EVAL_RESULTS_FILE, "\n".join(lines) + "\n")
            write_text(self.output_dir / BEST_TRIAL_FILE, f"{last_step}:{best_step}:{best_value}")
            yield global_step, result

    def _read_best_trial(self):
        path = self.output_dir / BEST_TRIAL_FILE
        if not path.exists():
            return -1, -1, -1.0
        text = path.read_text()
        try:
            last, best_step, best_value = text.split(":")
            return int(last), int(best_step), float(best_value)
        except ValueError:
            raise UserError(
                f"{path}: expected <global_step>:<best step>:<best value>, found {text!r}; "
                "remove it to score every checkpoint again"
            ) from None


def write_predictions(config: ClassifierV1RunConfig, prepared: PreparedClassifier, logits_of):
    from bertfam.atomic import write_text

    features = prepared.predict_features
    logits = np.concatenate(
        batched_logits(logits_of, features, config.predict_batch_size) or [np.zeros((0, 1))]
    )
    if config.is_regression:  # upstream writes the score itself, as both
        probabilities = logits
    else:
        shifted = logits - logits.max(axis=-1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    processor = get_processor(config.task_name, GLUE_PROCESSORS)
    examples = processor.get_test_examples(config.data_dir)
    ids = submission_ids(Path(config.data_dir) / processor.TEST[0], len(examples))
    output_dir = Path(config.output_dir)
    lines = ["\t".join(str(np.float32(p)) for p in row) + "\n" for row in probabilities]
    write_text(output_dir / TEST_RESULTS_FILE, "".join(lines))
    if config.is_regression:
        labels = [str(np.float32(score)) for score in probabilities[:, 0]]
    else:
        labels = [prepared.label_list[i] for i in probabilities.argmax(axis=-1)]
    submit = ["index\tprediction\n"] + [f"{i}\t{label}\n" for i, label in zip(ids, labels)]
    write_text(output_dir / SUBMIT_RESULTS_FILE, "".join(submit))
    log.info("wrote %s and %s (%d examples)", TEST_RESULTS_FILE, SUBMIT_RESULTS_FILE, len(lines))


def submission_ids(test_file: Path, count: int) -> List[str]:
    """The first column of each test row, the id upstream submits under (every GLUE test
    file has a header, then the row's id first)."""
    rows = [row for row in read_tsv(test_file)[1:] if row]
    if len(rows) != count:
        raise FlagError(f"{test_file}: {len(rows)} rows for {count} test examples")
    return [row[0] for row in rows]
