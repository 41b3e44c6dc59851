"""Every input of a TensorFlow task, read and checked before TensorFlow is imported.

`prepare_squad` and `prepare_classifier` read the model config (through the model's
recipe), the vocabulary (its tokenizer) and the task's data, and check every flag
combination, so that bad input costs a second and prints one line before TensorFlow's
start-up chatter could bury it. The task flows (`bertfam.tf.squad`,
`bertfam.tf.classifier`) then only train, predict and evaluate on what they are handed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from bertfam.bert_config import BertConfig
from bertfam.checkpoint_names import has_tf_state
from bertfam.errors import FlagError
from bertfam.glue.features import ClassificationFeatures, convert_examples_to_features
from bertfam.glue.readers import get_processor
from bertfam.run_config import require_at_least_one
from bertfam.squad.data import SquadExample, read_squad_examples
from bertfam.tf.recipe import ModelRecipe
from bertfam.tf.run_config import (
    ClassifierRunConfig,
    RunConfig,
    SquadRunConfig,
    check_common,
)
from bertfam.tokenization import Tokenizer, load_tokenizer


def _model_and_tokenizer(config: RunConfig, recipe: ModelRecipe):
    model_config = recipe.read_config(config.model_config_file)
    return model_config, lambda: load_tokenizer(
        config.tokenizer_file, config.do_lower_case, model_config, recipe.tokenizer
    )


@dataclass(frozen=True)
class PreparedSquad:
    model_config: BertConfig
    tokenizer: Tokenizer
    train_examples: Optional[List[SquadExample]]
    predict_examples: Optional[List[SquadExample]]


def check_squad(config: SquadRunConfig, model_config: BertConfig) -> None:
    """google-research/bert `validate_flags_or_throw`, plus the checks it left to chance."""
    if not (config.do_train or config.do_predict):
        raise FlagError("at least one of --do_train or --do_predict must be true")
    if config.do_eval and not config.do_predict:
        raise FlagError("--do_eval scores the predictions, so it needs --do_predict=true")
    if config.do_eval and config.version_2_with_negative:
        raise FlagError(
            "--do_eval scores SQuAD v1.1 only, as upstream; score v2.0 predictions with "
            "bertfam-squad-evaluate <predict_file> <output_dir>/predictions.json"
        )
    config.check_inputs(model_config, train=config.do_train, predict=config.do_predict)
    check_common(config)
    require_at_least_one(predict_batch_size=config.predict_batch_size)


def prepare_squad(config: SquadRunConfig, recipe: ModelRecipe) -> PreparedSquad:
    """Read and check every input; raises a `UserError` naming the first problem."""
    model_config, tokenizer = _model_and_tokenizer(config, recipe)
    check_squad(config, model_config)
    tokenizer = tokenizer()
    version_2 = config.version_2_with_negative
    train_examples = predict_examples = None
    if config.do_train:
        train_examples = read_squad_examples(
            config.train_file, is_training=True, version_2_with_negative=version_2
        )
    if config.do_predict:
        predict_examples = read_squad_examples(
            config.predict_file, is_training=False, version_2_with_negative=version_2
        )
    return PreparedSquad(model_config, tokenizer, train_examples, predict_examples)


@dataclass(frozen=True)
class PreparedClassifier:
    model_config: BertConfig
    tokenizer: Tokenizer
    label_list: List[str]
    train_features: Optional[ClassificationFeatures]
    eval_features: Optional[ClassificationFeatures]
    predict_features: Optional[ClassificationFeatures]


def check_classifier(config: ClassifierRunConfig, model_config: BertConfig) -> None:
    """google-research/bert's checks in `main`, plus the ones it left to chance."""
    model_config.check_max_seq_length(config.max_seq_length)
    check_common(config)
    require_at_least_one(
        eval_batch_size=config.eval_batch_size, predict_batch_size=config.predict_batch_size
    )
    if not 0.0 <= config.dropout_before_logits < 1.0:
        raise FlagError(f"--dropout_before_logits={config.dropout_before_logits} must be in [0, 1)")
    if not config.do_train and not (config.init_checkpoint or has_tf_state(config.output_dir)):
        raise FlagError(
            "--do_eval / --do_predict without --do_train need trained weights: a checkpoint "
            "in --output_dir or --init_checkpoint"
        )


# (split, its examples, how to build their features) -> the features: a model folder's
# way to keep features between runs (ALBERT's --cached_dir).
FeatureSource = Callable[[str, list, Callable[[], ClassificationFeatures]], ClassificationFeatures]


def _built(split: str, examples: list, build: Callable[[], ClassificationFeatures]):
    return build()


def prepare_classifier(
    config: ClassifierRunConfig,
    recipe: ModelRecipe,
    features_for: FeatureSource = _built,
    processors=None,
) -> PreparedClassifier:
    """Read and check every input, and build the features; raises a `UserError` naming
    the first problem. `processors`: the script's tasks (Google BERT's by default)."""
    if not (config.do_train or config.do_eval or config.do_predict):
        raise FlagError("at least one of --do_train, --do_eval or --do_predict must be true")
    # An unknown task lists the known ones.
    processor = get_processor(config.task_name, processors)
    if not Path(config.data_dir).is_dir():
        raise FlagError(f"--data_dir={config.data_dir}: no such directory")
    model_config, tokenizer = _model_and_tokenizer(config, recipe)
    check_classifier(config, model_config)
    tokenizer = tokenizer()
    label_list = processor.get_labels()

    def features(split: str, examples) -> ClassificationFeatures:
        return features_for(
            split,
            examples,
            lambda: convert_examples_to_features(
                examples, label_list, config.max_seq_length, tokenizer
            ),
        )

    train = eval_ = predict = None
    if config.do_train:
        train = features("train", processor.get_train_examples(config.data_dir))
        config.train_steps(len(train), world_size=1)  # more workers give fewer, never more
    if config.do_eval:
        eval_ = features("eval", processor.get_dev_examples(config.data_dir))
        if len(eval_) == 0:
            raise FlagError(
                f"--do_eval: the {config.task_name} dev set in --data_dir={config.data_dir} "
                "has no examples to score"
            )
    if config.do_predict:
        predict = features("predict", processor.get_test_examples(config.data_dir))
    return PreparedClassifier(model_config, tokenizer, label_list, train, eval_, predict)
