"""The absl flags the TensorFlow fine-tuning scripts share, named and defaulted as upstream.

google-research/bert and Habana's copies define these flags in every script; we define
them once (as Model Garden's `define_common_bert_flags` does) and each script adds what
is its own (`--bert_config_file`, `--distilbert_config_file`, task flags). Flags that
only tune Habana's runtime or TPUs are accepted so upstream command lines run unchanged,
and documented as having no effect elsewhere.

`SquadScript` is every TensorFlow ``run_squad.py``: it defines the flags, checks every
input, and only then loads TensorFlow and runs; bad input is one line and exit status 2.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Callable

from absl import flags

from bertfam.errors import UserError, report_and_exit
from bertfam.precision import bf16_setting

# Accepted for command-line compatibility; they change nothing outside Habana's or
# Google's TPU runtime (see the model folder's README).
COMPATIBILITY_ONLY = (
    "enable_scoped_allocator",
    "horovod_fusion_threshold",
    "iterations_per_loop",
    "use_tpu",
    "tpu_name",
    "tpu_zone",
    "gcp_project",
    "master",
    "num_tpu_cores",
    "verbose_logging",
)


def define_common_flags(num_train_epochs_default: float = 3.0) -> None:
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
    f.DEFINE_float("num_train_epochs", num_train_epochs_default, "Epochs of training.")
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
    # Compatibility only.
    f.DEFINE_bool("enable_scoped_allocator", False, "Habana only: scoped-allocator rewrite.")
    f.DEFINE_integer("horovod_fusion_threshold", 256, "Habana Gaudi2 only: Horovod fusion MB.")
    f.DEFINE_bool(
        "horovod_hierarchical_allreduce",
        False,
        "Sets HOROVOD_HIERARCHICAL_ALLREDUCE=1 for Horovod (all-reduce within, then across nodes).",
    )
    f.DEFINE_integer("iterations_per_loop", 1000, "TPU only.")
    f.DEFINE_bool("use_tpu", False, "TPU only (must stay false).")
    f.DEFINE_string("tpu_name", None, "TPU only.")
    f.DEFINE_string("tpu_zone", None, "TPU only.")
    f.DEFINE_string("gcp_project", None, "TPU only.")
    f.DEFINE_string("master", None, "TPU only.")
    f.DEFINE_integer("num_tpu_cores", 8, "TPU only.")
    f.DEFINE_bool("cpu_only", False, "Habana only: do not load the Habana module (= --device=cpu).")
    f.DEFINE_string(
        "profile", "", "START,END: TensorFlow-profile updates START..END into <output_dir>/profile."
    )


def define_squad_flags(num_train_epochs_default: float = 3.0) -> None:
    define_common_flags(num_train_epochs_default)
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


def training_run_kwargs(values, model_config_file: str) -> dict:
    """The `bertfam.run_config.TrainingRunConfig` fields, from parsed flags `values`."""
    return dict(
        model_config_file=model_config_file,
        vocab_file=values.vocab_file,
        output_dir=values.output_dir,
        init_checkpoint=values.init_checkpoint,
        do_lower_case=values.do_lower_case,
        do_train=values.do_train,
        train_batch_size=values.train_batch_size,
        learning_rate=values.learning_rate,
        num_train_epochs=values.num_train_epochs,
        num_train_steps=int(values.num_train_steps) if values.num_train_steps else None,
        warmup_proportion=values.warmup_proportion,
        num_accumulation_steps=values.num_accumulation_steps,
        save_checkpoints_steps=values.save_checkpoints_steps,
        save_summary_steps=values.save_summary_steps,
        use_horovod=values.use_horovod,
        horovod_hierarchical_allreduce=values.horovod_hierarchical_allreduce,
        profile=values.profile,
        deterministic_run=values.deterministic_run,
        deterministic_seed=values.deterministic_seed,
        device="cpu" if values.cpu_only else values.device,
        # The flag wins over the variable, as upstream overwrites the variable from it.
        bf16=bf16_setting(values.bf16_config_path, os.environ.get("TF_BF16_CONVERSION")),
    )


def squad_run_kwargs(values) -> dict:
    """The `bertfam.squad.run.SquadRunConfig` fields of its own, from parsed flags `values`."""
    return dict(
        do_predict=values.do_predict,
        do_eval=values.do_eval,
        train_file=values.train_file,
        predict_file=values.predict_file,
        max_seq_length=values.max_seq_length,
        doc_stride=values.doc_stride,
        max_query_length=values.max_query_length,
        predict_batch_size=values.predict_batch_size,
        n_best_size=values.n_best_size,
        max_answer_length=values.max_answer_length,
        version_2_with_negative=values.version_2_with_negative,
        null_score_diff_threshold=values.null_score_diff_threshold,
    )


class SquadScript:
    """A model folder's ``run_squad.py``: the flags, plus what is the model's own.

    `config_flag` names the flag for the model's config file (``bert_config_file``),
    `read_model_config` reads it, `network` is the span model's class in the folder's
    ``modeling.py`` (imported only once every input has been checked, since it loads
    TensorFlow), and `fixed` are settings the model's recipe fixes (DistilBERT's AdamW
    constants). Defining the flags is part of making one, as a script defines them on
    import.
    """

    def __init__(
        self,
        config_flag: str,
        read_model_config: Callable,
        network: str,
        num_train_epochs_default: float = 3.0,
        **fixed,
    ):
        define_squad_flags(num_train_epochs_default)
        flags.DEFINE_string(config_flag, None, "The model's config JSON (architecture).")
        for required in ("vocab_file", config_flag, "output_dir"):
            flags.mark_flag_as_required(required)
        self.config_flag = config_flag
        self.read_model_config = read_model_config
        self.network = network
        self.fixed = fixed

    def config_from_flags(self):
        from bertfam.squad.run import SquadRunConfig

        values = flags.FLAGS
        model_config_file = getattr(values, self.config_flag)
        return SquadRunConfig(
            **training_run_kwargs(values, model_config_file=model_config_file),
            **squad_run_kwargs(values),
            **self.fixed,
        )

    def build_model(self, model_config, precision):
        modeling = importlib.import_module("modeling")  # TensorFlow loads here
        return getattr(modeling, self.network)(model_config, precision)

    def main(self, argv) -> None:
        """For ``app.run``: run SQuAD as the flags say; bad input is one line, exit 2."""
        del argv  # absl has parsed the flags
        logging.getLogger().setLevel(logging.INFO)
        try:
            from bertfam.squad.run import prepare

            config = self.config_from_flags()
            prepared = prepare(config, self.read_model_config)
            from bertfam.tf.squad import run_squad

            run_squad(config, prepared, self.build_model)
        except UserError as error:
            report_and_exit(error, prog="run_squad.py")
