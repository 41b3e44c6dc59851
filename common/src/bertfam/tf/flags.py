"""The absl flags the TensorFlow scripts share, named and defaulted as upstream.

google-research/bert and Habana's copies define these flags in every script; we define
them once (as Model Garden's `define_common_bert_flags` does) and each task adds its
own. Flags that only tune Habana's runtime or TPUs are accepted so upstream command
lines run unchanged, and documented as having no effect elsewhere; ``--use_tpu=true``
is refused. `config_from_flags` turns the parsed flags into the task's frozen config,
field by field under the flags' own names.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping, Optional

from absl import flags

from bertfam.errors import FlagError
from bertfam.precision import bf16_setting
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import RunConfig


def define_common_flags() -> None:
    """The flags every TensorFlow script has."""
    f = flags
    f.DEFINE_string("vocab_file", None, "The vocabulary file the model was trained on.")
    f.DEFINE_string("output_dir", None, "Where checkpoints, predictions and logs are written.")
    f.DEFINE_string(
        "init_checkpoint",
        None,
        "Initial weights: a Google TF checkpoint prefix (.../bert_model.ckpt), a checkpoint "
        "of ours (model.ckpt-N), or a HuggingFace model folder.",
    )
    f.DEFINE_bool("do_lower_case", True, "Lower-case the input (uncased models).")
    f.DEFINE_bool("do_train", False, "Whether to run training.")
    f.DEFINE_integer("train_batch_size", 32, "Batch size per worker for training.")
    f.DEFINE_float("learning_rate", 5e-5, "Peak learning rate for Adam (not scaled by workers).")
    f.DEFINE_float("num_train_epochs", 3.0, "Epochs of training.")
    f.DEFINE_float("num_train_steps", None, "If set, the number of updates, overriding epochs.")
    f.DEFINE_float("warmup_proportion", 0.1, "Fraction of the updates spent warming up.")
    f.DEFINE_integer("num_accumulation_steps", 1, "Micro-batches per update.")
    f.DEFINE_integer("save_checkpoints_steps", 1000, "Updates between checkpoints.")
    f.DEFINE_integer("save_summary_steps", 1, "Updates between metrics records.")
    f.DEFINE_bool("use_horovod", False, "Data-parallel over mpirun workers with Horovod.")
    f.DEFINE_string(
        "bf16_config_path",
        None,
        "bf16 JSON (bf16_config/<model>.json); TF_BF16_CONVERSION is honoured when unset.",
    )
    f.DEFINE_bool("deterministic_run", False, "Seeded run with dropout disabled.")
    f.DEFINE_integer("deterministic_seed", 1, "Seed for --deterministic_run.")
    f.DEFINE_bool(
        "verbose_logging",
        False,
        "Upstream: print answer-alignment warnings. Ours cuts answers by offsets, so there "
        "are none; every restored variable is always logged.",
    )
    f.DEFINE_string("device", "auto", "auto, hpu, gpu or cpu (ours: upstream picks by build).")
    # Accepted so upstream command lines run; no effect outside Habana's or TPU runtimes.
    f.DEFINE_bool("enable_scoped_allocator", False, "Habana only: scoped-allocator rewrite.")
    f.DEFINE_integer("horovod_fusion_threshold", 256, "Habana Gaudi2 only: Horovod fusion MB.")
    f.DEFINE_bool(
        "horovod_hierarchical_allreduce",
        False,
        "Sets HOROVOD_HIERARCHICAL_ALLREDUCE=1 for Horovod (all-reduce within, then across nodes).",
    )
    f.DEFINE_integer("iterations_per_loop", 1000, "TPU only.")
    f.DEFINE_bool("use_tpu", False, "TPU only: must stay false (true is refused).")
    f.DEFINE_string("tpu_name", None, "TPU only.")
    f.DEFINE_string("tpu_zone", None, "TPU only.")
    f.DEFINE_string("gcp_project", None, "TPU only.")
    f.DEFINE_string("master", None, "TPU only.")
    f.DEFINE_integer("num_tpu_cores", 8, "TPU only.")
    f.DEFINE_bool("cpu_only", False, "Habana only: do not load the Habana module (= --device=cpu).")
    f.DEFINE_string(
        "profile", "", "START,END: TensorFlow-profile updates START..END into <output_dir>/profile."
    )


def define_squad_flags() -> None:
    """google-research/bert `run_squad.py`'s own flags."""
    define_common_flags()
    f = flags
    f.DEFINE_string("train_file", None, "SQuAD JSON for training, e.g. train-v1.1.json.")
    f.DEFINE_string("predict_file", None, "SQuAD JSON for predictions, e.g. dev-v1.1.json.")
    f.DEFINE_integer("max_seq_length", 384, "Tokens per window, question included.")
    f.DEFINE_integer("doc_stride", 128, "Tokens between the starts of context windows.")
    f.DEFINE_integer("max_query_length", 64, "Questions are cut to this many tokens.")
    f.DEFINE_bool("do_predict", False, "Write predictions for --predict_file.")
    f.DEFINE_bool("do_eval", False, "Score the predictions (EM/F1) against --predict_file.")
    f.DEFINE_integer("predict_batch_size", 8, "Batch size for predictions.")
    f.DEFINE_integer("n_best_size", 20, "Candidates kept per question in nbest_predictions.json.")
    f.DEFINE_integer("max_answer_length", 30, "Longest answer, in tokens.")
    f.DEFINE_bool("version_2_with_negative", False, "SQuAD 2.0: questions may have no answer.")
    f.DEFINE_float("null_score_diff_threshold", 0.0, "Answer '' if null - best > this.")


def define_classifier_flags() -> None:
    """google-research/bert `run_classifier.py`'s own flags, with Habana's additions."""
    define_common_flags()
    f = flags
    f.DEFINE_string(
        "data_dir", None, "The task's folder of TSV files (train.tsv, dev.tsv, test.tsv for MRPC)."
    )
    f.DEFINE_string("task_name", None, "The GLUE task: cola, mnli, mrpc or xnli (any case).")
    f.DEFINE_integer(
        "max_seq_length", 128, "Tokens per example after WordPiece, [CLS]/[SEP] included."
    )
    f.DEFINE_bool("do_eval", False, "Evaluate on the dev set: eval_results.txt.")
    f.DEFINE_bool("do_predict", False, "Class probabilities for the test set: test_results.tsv.")
    f.DEFINE_integer("eval_batch_size", 8, "Batch size for evaluation.")
    f.DEFINE_integer("predict_batch_size", 8, "Batch size for predictions.")
    f.DEFINE_float(
        "dropout_before_logits", 0.1, "Habana: dropout on the pooled output before the classifier."
    )


def define_pretraining_flags() -> None:
    """The upstream TF BERT `run_pretraining.py`'s flags."""
    define_common_flags()
    f = flags
    f.FLAGS.set_default("num_train_steps", 100000)
    f.DEFINE_string("input_files_dir", None, "Directories (comma-separated) of training records.")
    f.DEFINE_string("eval_files_dir", None, "Directories (comma-separated) of evaluation records.")
    f.DEFINE_integer("max_seq_length", 512, "Sequence length of the records (128 or 512).")
    f.DEFINE_integer("max_predictions_per_seq", 80, "Masked positions per record (20 or 80).")
    f.DEFINE_bool("do_eval", False, "Evaluate on --eval_files_dir: eval_results.txt.")
    f.DEFINE_integer("eval_batch_size", 8, "Batch size for evaluation.")
    f.DEFINE_integer("max_eval_steps", 100, "Evaluation batches.")
    f.DEFINE_string("optimizer_type", "lamb", "lamb or adam.")
    f.DEFINE_integer("num_warmup_steps", 10000, "Warm-up updates.")
    f.DEFINE_bool("resume", False, "Also continue step and optimizer state from --init_checkpoint.")
    f.DEFINE_string("dllog_path", "/results/bert_dllog.json", "DLLogger JSON-lines file.")
    f.DEFINE_integer("display_loss_steps", 10, "Updates between DLLogger records.")
    f.DEFINE_bool("horovod", False, "Data-parallel over mpirun workers with Horovod.")
    f.DEFINE_bool(
        "allreduce_post_accumulation",
        False,
        "Ours always all-reduces once per update, after accumulation (the same sum).",
    )
    f.DEFINE_bool("report_loss", True, "The loss is always logged (false is refused).")
    f.DEFINE_integer("init_loss_scale", 2**32, "AMP only (not supported here).")
    # Upstream defaults these to true for NVIDIA GPUs; its README always turns them off.
    f.DEFINE_bool("amp", False, "NVIDIA AMP: not supported (true is refused).")
    f.DEFINE_bool("use_xla", False, "XLA JIT: not supported (true is refused).")
    f.DEFINE_bool("manual_fp16", False, "Not supported upstream either (true is refused).")
    f.DEFINE_string("export_dir", None, "SavedModel export: not supported yet (refused).")


def pretraining_values(values) -> None:
    """Refuse what run_pretraining.py accepts upstream but we do not do; --horovod is
    our --use_horovod."""
    for flag in ("amp", "use_xla", "manual_fp16"):
        if getattr(values, flag):
            raise FlagError(
                f"--{flag}=true is not supported: use --bf16_config_path for mixed precision"
            )
    if values.export_dir:
        raise FlagError("--export_dir: SavedModel export is not supported yet")
    if not values.report_loss:
        raise FlagError("--report_loss=false: the loss is always logged")
    if values.resume and not values.init_checkpoint:
        raise FlagError("--resume continues --init_checkpoint: give one")
    if values.optimizer_type not in ("lamb", "adam"):
        raise FlagError(f"--optimizer_type={values.optimizer_type}: use lamb or adam")
    if values.horovod:
        values.use_horovod = True


def config_from_flags(
    config_class: type, values, recipe: ModelRecipe, renamed: Optional[Mapping[str, str]] = None
) -> RunConfig:
    """The parsed flags `values` as `config_class` (a `RunConfig`): each field from the
    flag of its name (or, through `renamed`, a flag of another name: ALBERT's
    --spm_model_file is the tokenizer_file), plus the model's config file, the resolved
    bf16 setting and what the recipe fixes."""
    if values.use_tpu:
        raise FlagError("--use_tpu=true: TPUs are not supported here (Gaudi, GPU or CPU)")
    fields = {field.name for field in dataclasses.fields(config_class)}
    given = {name: getattr(values, name) for name in fields if name in values}
    given.update(
        model_config_file=getattr(values, recipe.config_flag),
        num_train_steps=int(values.num_train_steps) if values.num_train_steps else None,
        device="cpu" if values.cpu_only else values.device,
        # The flag wins over the variable, as upstream overwrites the variable from it.
        bf16_config_path=bf16_setting(
            values.bf16_config_path, os.environ.get("TF_BF16_CONVERSION")
        ),
        **recipe.fixed,
    )
    given.update({field: getattr(values, flag) for flag, field in (renamed or {}).items()})
    return config_class(**given)
