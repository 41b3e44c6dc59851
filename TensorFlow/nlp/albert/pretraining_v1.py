"""google-research/albert's run_pretraining.py on the shared TensorFlow pre-training flow.

`bertfam.tf.pretraining` runs it (records, loop, checkpoints, evaluation); what differs
from Habana BERT's run_pretraining.py, as upstream does it:

- flags: ``--albert_config_file``; ``--input_file`` and ``--eval_file`` are globs (or
  comma-separated lists of them), not folders; ``--optimizer`` lamb (google-research/
  albert's LAMB, `bertfam.tf.optimization.GoogleLamb`) or adamw; ``--poly_power`` the
  decay's power; ``--start_warmup_step`` where warm-up counts from; upstream's defaults
  (``--do_train``, a batch of 4096, rate 0.00176, 125,000 updates, 3,125 warm-up,
  20 predictions, checkpoints every 5,000, five kept, an evaluation batch of 64);
- the peak rate is the flag's, whatever the number of workers (Habana BERT multiplies
  it), decaying from the peak (Google's curve);
- sentence order instead of next sentence: the records' ``next_sentence_labels`` carry
  it, and ``eval_results.txt`` names it ``sentence_order_accuracy`` and
  ``sentence_order_loss``;
- ``--masked_lm_budget`` > 0 masks each record as it is read, from its ``token_boundary``
  (`bertfam.pretraining.ngram_masking.OnTheFlyMasking`): the budget is the fraction of
  real tokens to mask, as n-grams of whole words. Upstream reads the boundaries but its
  model still asks for the stored masks, so it fails there.

Where ours differs: ``--init_from_group0`` initializes every layer group from group 0
of the checkpoint, as upstream; with the one shared group of every released ALBERT
(the only layout ``modeling.py`` takes) that is what loading does anyway. Before
``--start_warmup_step`` the rate is 0 (upstream's formula goes negative).
``--use_einsum=true`` is refused (the layers have one implementation here); the TPU
flags do nothing off TPUs, as upstream.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

from absl import flags

from bertfam.errors import FlagError, refuse_given
from bertfam.pretraining.create import input_files
from bertfam.tf.flags import define_common_flags
from bertfam.tf.pretraining import (
    OptimizerChoice,
    PretrainingInputs,
    PretrainingRunConfig,
    PretrainingVariant,
)
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.scripts import TaskScript, prepare_pretraining, run_pretraining


@dataclass(frozen=True, kw_only=True)
class AlbertPretrainingRunConfig(PretrainingRunConfig):
    """google-research/albert's run_pretraining.py flags."""

    input_file: str = ""
    eval_file: Optional[str] = None
    optimizer: str = "lamb"
    poly_power: float = 1.0
    init_from_group0: bool = False
    mask_id: int = 4  # [MASK] in every released ALBERT vocabulary: <pad> <unk> [CLS] [SEP] [MASK]
    max_predictions_per_seq: int = 20
    eval_batch_size: int = 64
    keep_checkpoint_max: int = 5
    dllog_path: str = ""  # upstream has no DLLogger file
    sentence_task: str = "sentence_order"


def glob_inputs(config: AlbertPretrainingRunConfig) -> PretrainingInputs:
    """``--input_file`` and ``--eval_file``: globs, comma-separated; never packed."""
    train_files, eval_files = [], []
    if config.do_train:
        if not config.input_file:
            raise FlagError("--do_train needs --input_file")
        train_files = input_files(config.input_file, "input_file")
    if config.do_eval:
        if not config.eval_file:
            raise FlagError("--do_eval needs --eval_file")
        eval_files = input_files(config.eval_file, "eval_file")
    return PretrainingInputs(train_files, eval_files)


def albert_optimizer(config: AlbertPretrainingRunConfig) -> OptimizerChoice:
    """google-research/albert's LAMB or AdamW, decaying from the peak (Google's curve) with
    power ``--poly_power``."""
    from bertfam.tf.optimization import adamw, google_lamb

    return OptimizerChoice(
        google_lamb if config.optimizer == "lamb" else adamw, "google", config.poly_power
    )


# The peak rate is the flag's, whatever the number of workers.
ALBERT_PRETRAINING = PretrainingVariant(glob_inputs, albert_optimizer, rate_per_worker=False)


def define_pretraining_v1_flags(recipe: ModelRecipe) -> None:
    define_common_flags()
    f = flags
    f.DEFINE_string(recipe.config_flag, None, "ALBERT's albert_config.json (architecture).")
    f.DEFINE_string("input_file", None, "Training records: globs, comma-separated.")
    f.DEFINE_string("eval_file", None, "Evaluation records: globs, comma-separated.")
    f.DEFINE_integer("max_seq_length", 512, "Sequence length of the records.")
    f.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per record.")
    f.DEFINE_bool("do_eval", False, "Evaluate on --eval_file: eval_results.txt.")
    f.DEFINE_integer("eval_batch_size", 64, "Batch size for evaluation.")
    f.DEFINE_integer("max_eval_steps", 100, "Evaluation batches.")
    f.DEFINE_string("optimizer", "lamb", "lamb (google-research/albert's) or adamw.")
    f.DEFINE_float("poly_power", 1.0, "Power of the polynomial decay.")
    f.DEFINE_integer("num_warmup_steps", 3125, "Warm-up updates.")
    f.DEFINE_integer("start_warmup_step", 0, "The update warm-up counts from.")
    f.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
    f.DEFINE_bool("init_from_group0", False, "Every layer group from the checkpoint's group 0.")
    f.DEFINE_float("masked_lm_budget", 0.0, "If > 0: mask on the fly, this fraction of tokens.")
    f.DEFINE_bool("use_einsum", False, "Not supported (true is refused).")
    for name, value in dict(
        do_train=True,
        train_batch_size=4096,
        learning_rate=0.00176,
        num_train_steps=125000,
        save_checkpoints_steps=5000,
    ).items():
        f.FLAGS.set_default(name, value)
    for name in (recipe.config_flag, "output_dir"):
        f.mark_flag_as_required(name)


def pretraining_v1_values(values) -> None:
    """Refuse what upstream accepts but we do not do."""
    refuse_given(values, {"use_einsum": "the dense layers have one implementation here"})
    if values.optimizer not in ("lamb", "adamw"):
        raise FlagError(f"--optimizer={values.optimizer}: lamb or adamw")
    if values["num_train_epochs"].present:
        raise FlagError("run_pretraining.py trains --num_train_steps updates: use that")


def pretraining_v1_script(recipe: ModelRecipe) -> TaskScript:
    """google-research/albert's ``run_pretraining.py`` for `recipe`'s pre-training model."""
    define_pretraining_v1_flags(recipe)
    return TaskScript(
        recipe,
        AlbertPretrainingRunConfig,
        functools.partial(prepare_pretraining, variant=ALBERT_PRETRAINING),
        run_pretraining,
        "run_pretraining.py",
        fold_flags=pretraining_v1_values,
    )
