"""Everything a GLUE classification run checks before it imports a framework.

`prepare(config)` reads the model config, the vocabulary and the task's TSV files, turns
the examples into features and checks every flag combination, so that bad input costs a
second and prints one line before TensorFlow or PyTorch is even imported (whose start-up
chatter would bury the message). The framework side (`bertfam.tf.classifier`) only
trains, evaluates and predicts on the arrays it is handed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from bertfam.bert_config import BertConfig
from bertfam.errors import UserError
from bertfam.glue.features import ClassificationFeatures, convert_examples_to_features
from bertfam.glue.readers import get_processor
from bertfam.precision import load_bf16_config
from bertfam.tf import HOROVOD_INSTALL_HINT
from bertfam.tokenization.wordpiece import WordPieceTokenizer

EVAL_RESULTS_FILE = "eval_results.txt"
TEST_RESULTS_FILE = "test_results.tsv"
# google-research/bert shuffles its training records with a buffer of 100; a fixed seed
# gives the same order in every run, so a resumed run skips exactly what it had seen.
SHUFFLE_BUFFER = 100
SHUFFLE_SEED = 12345
# The index file tf.train.CheckpointManager keeps beside the checkpoints it writes.
CHECKPOINT_INDEX_FILE = "checkpoint"


class ClassifierFlagError(UserError):
    """Flags that cannot work together, or input files that are not there."""


@dataclass(frozen=True)
class ClassifierRunConfig:
    task_name: str
    data_dir: str
    model_config_file: str
    vocab_file: str
    output_dir: str
    init_checkpoint: Optional[str] = None
    do_lower_case: bool = True
    do_train: bool = False
    do_eval: bool = False
    do_predict: bool = False
    max_seq_length: int = 128
    train_batch_size: int = 32
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    num_train_steps: Optional[int] = None
    warmup_proportion: float = 0.1
    num_accumulation_steps: int = 1
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 1
    dropout_before_logits: float = 0.1
    use_horovod: bool = False
    deterministic_run: bool = False
    deterministic_seed: int = 1
    # Google's run_classifier leaves the Estimator's default of 5 (run_squad keeps 1).
    keep_checkpoint_max: int = 5
    device: str = "auto"  # auto, hpu, gpu or cpu
    bf16: Optional[str] = None  # resolved --bf16_config_path / TF_BF16_CONVERSION
    weight_decay_rate: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999


@dataclass(frozen=True)
class PreparedRun:
    model_config: BertConfig
    tokenizer: WordPieceTokenizer
    label_list: List[str]
    train_features: Optional[ClassificationFeatures]
    eval_features: Optional[ClassificationFeatures]
    predict_features: Optional[ClassificationFeatures]


def validate(config: ClassifierRunConfig, model_config: BertConfig) -> None:
    """google-research/bert's checks in `main`, plus the ones it left to chance."""
    if config.max_seq_length > model_config.max_position_embeddings:
        raise ClassifierFlagError(
            f"--max_seq_length={config.max_seq_length} is longer than the model's "
            f"max_position_embeddings ({model_config.max_position_embeddings})"
        )
    if config.init_checkpoint and not (
        Path(config.init_checkpoint).is_dir() or Path(f"{config.init_checkpoint}.index").is_file()
    ):
        raise ClassifierFlagError(
            f"--init_checkpoint={config.init_checkpoint}: no such checkpoint (expected "
            f"{config.init_checkpoint}.index, or a HuggingFace model folder)"
        )
    for flag in (
        "train_batch_size",
        "eval_batch_size",
        "predict_batch_size",
        "num_accumulation_steps",
    ):
        if getattr(config, flag) < 1:
            raise ClassifierFlagError(f"--{flag} must be at least 1")
    if not 0.0 <= config.dropout_before_logits < 1.0:
        raise ClassifierFlagError(
            f"--dropout_before_logits={config.dropout_before_logits} must be in [0, 1)"
        )
    if not config.do_train and not (config.init_checkpoint or has_checkpoint(config.output_dir)):
        raise ClassifierFlagError(
            "--do_eval / --do_predict without --do_train need trained weights: a checkpoint "
            "in --output_dir or --init_checkpoint"
        )


def has_checkpoint(output_dir: str) -> bool:
    """Whether a run has left checkpoints in `output_dir` (without loading TensorFlow)."""
    return (Path(output_dir) / CHECKPOINT_INDEX_FILE).is_file()


def check_vocab_matches(tokenizer: WordPieceTokenizer, model_config: BertConfig) -> None:
    if tokenizer.vocab_size != model_config.vocab_size:
        raise ClassifierFlagError(
            f"the vocab file {tokenizer.vocab_file} has {tokenizer.vocab_size} tokens but "
            f"{model_config.source} says vocab_size={model_config.vocab_size}: they must "
            "come from the same model"
        )


def horovod_installed() -> bool:
    """Without importing it (that would load TensorFlow before the checks are done)."""
    try:
        return importlib.util.find_spec("horovod.tensorflow") is not None
    except ImportError:
        return False


def train_steps(config: ClassifierRunConfig, num_examples: int, world_size: int) -> int:
    """Updates in the run: --num_train_steps, else Google's int(examples / batch * epochs).

    The batch is the global one, per-worker batch x workers x accumulation, as Habana's
    copy divides by the number of workers.
    """
    if config.num_train_steps:
        return int(config.num_train_steps)
    global_batch = config.train_batch_size * world_size * config.num_accumulation_steps
    steps = int(num_examples / global_batch * config.num_train_epochs)
    if steps < 1:
        raise ClassifierFlagError(
            f"{num_examples} training examples at a global batch of {global_batch} for "
            f"{config.num_train_epochs} epochs give no update: lower --train_batch_size or "
            "raise --num_train_epochs / --num_train_steps"
        )
    return steps


def prepare(
    config: ClassifierRunConfig,
    read_model_config: Callable[[str], BertConfig] = BertConfig.from_json_file,
) -> PreparedRun:
    """Read and check every input; raises a `UserError` naming the first problem."""
    if not (config.do_train or config.do_eval or config.do_predict):
        raise ClassifierFlagError(
            "at least one of --do_train, --do_eval or --do_predict must be true"
        )
    processor = get_processor(config.task_name)  # an unknown task lists the known ones
    if not Path(config.data_dir).is_dir():
        raise ClassifierFlagError(f"--data_dir={config.data_dir}: no such directory")
    model_config = read_model_config(config.model_config_file)
    validate(config, model_config)
    if config.use_horovod and not horovod_installed():
        raise ClassifierFlagError(
            f"--use_horovod=true needs Horovod, which is not installed. {HOROVOD_INSTALL_HINT}"
        )
    if config.bf16 not in (None, "full", "basic"):
        load_bf16_config(config.bf16)
    tokenizer = WordPieceTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    check_vocab_matches(tokenizer, model_config)
    label_list = processor.get_labels()

    def features(examples) -> ClassificationFeatures:
        return convert_examples_to_features(examples, label_list, config.max_seq_length, tokenizer)

    train = eval_ = predict = None
    if config.do_train:
        train = features(processor.get_train_examples(config.data_dir))
        train_steps(config, len(train), world_size=1)  # more workers give fewer, never more
    if config.do_eval:
        eval_ = features(processor.get_dev_examples(config.data_dir))
        if len(eval_) == 0:
            raise ClassifierFlagError(
                f"--do_eval: the {config.task_name} dev set in --data_dir={config.data_dir} "
                "has no examples to score"
            )
    if config.do_predict:
        predict = features(processor.get_test_examples(config.data_dir))
    return PreparedRun(model_config, tokenizer, label_list, train, eval_, predict)
