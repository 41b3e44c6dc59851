"""Everything a GLUE classification run checks before it imports a framework.

`prepare(config)` reads the model config, the vocabulary and the task's TSV files, turns
the examples into features and checks every flag combination, so that bad input costs a
second and prints one line before TensorFlow or PyTorch is even imported (whose start-up
chatter would bury the message). The framework side (`bertfam.tf.classifier`) only
trains, evaluates and predicts on the arrays it is handed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from bertfam.bert_config import BertConfig
from bertfam.glue.features import ClassificationFeatures, convert_examples_to_features
from bertfam.glue.readers import get_processor
from bertfam.run_config import (
    RunFlagError,
    TrainingRunConfig,
    check_common,
    has_checkpoint,
    load_tokenizer,
)
from bertfam.tokenization.wordpiece import WordPieceTokenizer

EVAL_RESULTS_FILE = "eval_results.txt"
TEST_RESULTS_FILE = "test_results.tsv"


@dataclass(frozen=True, kw_only=True)
class ClassifierRunConfig(TrainingRunConfig):
    task_name: str
    data_dir: str
    do_eval: bool = False
    do_predict: bool = False
    max_seq_length: int = 128
    eval_batch_size: int = 8
    predict_batch_size: int = 8
    dropout_before_logits: float = 0.1
    # Google's run_classifier leaves the Estimator's default of 5 (run_squad keeps 1).
    keep_checkpoint_max: int = 5


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
    check_common(config, model_config, config.max_seq_length)
    for flag in ("eval_batch_size", "predict_batch_size"):
        if getattr(config, flag) < 1:
            raise RunFlagError(f"--{flag} must be at least 1")
    if not 0.0 <= config.dropout_before_logits < 1.0:
        raise RunFlagError(
            f"--dropout_before_logits={config.dropout_before_logits} must be in [0, 1)"
        )
    if not config.do_train and not (config.init_checkpoint or has_checkpoint(config.output_dir)):
        raise RunFlagError(
            "--do_eval / --do_predict without --do_train need trained weights: a checkpoint "
            "in --output_dir or --init_checkpoint"
        )


def prepare(
    config: ClassifierRunConfig,
    read_model_config: Callable[[str], BertConfig] = BertConfig.from_json_file,
) -> PreparedRun:
    """Read and check every input; raises a `UserError` naming the first problem."""
    if not (config.do_train or config.do_eval or config.do_predict):
        raise RunFlagError("at least one of --do_train, --do_eval or --do_predict must be true")
    processor = get_processor(config.task_name)  # an unknown task lists the known ones
    if not Path(config.data_dir).is_dir():
        raise RunFlagError(f"--data_dir={config.data_dir}: no such directory")
    model_config = read_model_config(config.model_config_file)
    validate(config, model_config)
    tokenizer = load_tokenizer(config, model_config)
    label_list = processor.get_labels()

    def features(examples) -> ClassificationFeatures:
        return convert_examples_to_features(examples, label_list, config.max_seq_length, tokenizer)

    train = eval_ = predict = None
    if config.do_train:
        train = features(processor.get_train_examples(config.data_dir))
        config.train_steps(len(train), world_size=1)  # more workers give fewer, never more
    if config.do_eval:
        eval_ = features(processor.get_dev_examples(config.data_dir))
        if len(eval_) == 0:
            raise RunFlagError(
                f"--do_eval: the {config.task_name} dev set in --data_dir={config.data_dir} "
                "has no examples to score"
            )
    if config.do_predict:
        predict = features(processor.get_test_examples(config.data_dir))
    return PreparedRun(model_config, tokenizer, label_list, train, eval_, predict)
