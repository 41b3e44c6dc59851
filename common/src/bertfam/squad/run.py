"""Everything a SQuAD fine-tuning run checks before it imports a framework.

`prepare(config)` reads the model config, the vocabulary and the SQuAD files and checks
every flag combination, so that bad input costs a second and prints one line, before
TensorFlow or PyTorch is even imported (whose start-up chatter would bury the message).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

from bertfam.bert_config import BertConfig
from bertfam.errors import UserError
from bertfam.run_config import (
    RunFlagError,
    TrainingRunConfig,
    check_common,
    load_tokenizer,
    require_file,
)
from bertfam.squad.data import SquadExample, read_squad_examples
from bertfam.squad.features import (
    SquadFeatures,
    convert_examples_to_features,
    validate_lengths,
)
from bertfam.squad.postprocess import SquadPredictions, postprocess_predictions
from bertfam.tokenization.wordpiece import WordPieceTokenizer

EVAL_RESULTS_FILE = "eval_results.txt"


@dataclass(frozen=True, kw_only=True)
class SquadOptions:
    """The SQuAD settings every SQuAD script has: Google's run_squad.py and HuggingFace's
    name them alike and give them the same defaults."""

    train_file: Optional[str] = None
    predict_file: Optional[str] = None
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0

    def features(
        self, tokenizer: WordPieceTokenizer, examples: Sequence[SquadExample], is_training: bool
    ) -> SquadFeatures:
        return convert_examples_to_features(
            examples,
            tokenizer,
            max_seq_length=self.max_seq_length,
            doc_stride=self.doc_stride,
            max_query_length=self.max_query_length,
            is_training=is_training,
        )

    def predictions(
        self,
        examples: Sequence[SquadExample],
        features: SquadFeatures,
        start_logits: np.ndarray,
        end_logits: np.ndarray,
    ) -> SquadPredictions:
        """Answers and n-best lists from the model's logits, as these settings say."""
        return postprocess_predictions(
            examples,
            features,
            start_logits,
            end_logits,
            n_best_size=self.n_best_size,
            max_answer_length=self.max_answer_length,
            version_2_with_negative=self.version_2_with_negative,
            null_score_diff_threshold=self.null_score_diff_threshold,
        )


@dataclass(frozen=True, kw_only=True)
class SquadRunConfig(TrainingRunConfig, SquadOptions):
    do_predict: bool = False
    do_eval: bool = False
    predict_batch_size: int = 8


def validate(config: SquadRunConfig, model_config: BertConfig) -> None:
    """google-research/bert `validate_flags_or_throw`, plus the checks it left to chance."""
    if not (config.do_train or config.do_predict):
        raise RunFlagError("at least one of --do_train or --do_predict must be true")
    if config.do_eval and not config.do_predict:
        raise RunFlagError("--do_eval scores the predictions, so it needs --do_predict=true")
    if config.do_eval and config.version_2_with_negative:
        raise RunFlagError(
            "--do_eval scores SQuAD v1.1 only, as upstream; score v2.0 predictions with "
            "bertfam-squad-evaluate <predict_file> <output_dir>/predictions.json"
        )
    if config.do_train:
        require_file(config.train_file, "train_file")
    if config.do_predict:
        require_file(config.predict_file, "predict_file")
    check_common(config, model_config, config.max_seq_length)
    try:
        validate_lengths(config.max_seq_length, config.doc_stride, config.max_query_length)
    except UserError as error:
        raise RunFlagError(str(error)) from None
    if config.predict_batch_size < 1:
        raise RunFlagError("--predict_batch_size must be at least 1")


@dataclass(frozen=True)
class PreparedRun:
    model_config: BertConfig
    tokenizer: WordPieceTokenizer
    train_examples: Optional[List[SquadExample]]
    predict_examples: Optional[List[SquadExample]]


def prepare(
    config: SquadRunConfig,
    read_model_config: Callable[[str], BertConfig] = BertConfig.from_json_file,
) -> PreparedRun:
    """Read and check every input; raises a `UserError` naming the first problem."""
    model_config = read_model_config(config.model_config_file)
    validate(config, model_config)
    tokenizer = load_tokenizer(config, model_config)
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
    return PreparedRun(model_config, tokenizer, train_examples, predict_examples)
