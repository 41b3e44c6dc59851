"""The SQuAD settings every SQuAD script shares, TensorFlow's and PyTorch's.

`SquadOptions` holds them (named and defaulted as Google's run_squad.py and HuggingFace's
run_squad.py both do), checks them with `check_inputs` before a framework is imported,
and turns them into features and predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from bertfam.bert_config import BertConfig
from bertfam.errors import FlagError, UserError, require_file
from bertfam.squad.data import SquadExample
from bertfam.squad.features import (
    SquadFeatures,
    convert_examples_to_features,
    validate_lengths,
)
from bertfam.squad.postprocess import SquadPredictions, postprocess_predictions
from bertfam.tokenization import Tokenizer

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

    def check_inputs(self, model_config: BertConfig, *, train: bool, predict: bool) -> None:
        """What every SQuAD run checks before it reads anything: the files it will read,
        the window lengths, and that the model has positions for a whole window."""
        if train:
            require_file(self.train_file, "train_file")
        if predict:
            require_file(self.predict_file, "predict_file")
        try:
            validate_lengths(self.max_seq_length, self.doc_stride, self.max_query_length)
        except UserError as error:
            raise FlagError(str(error)) from None
        model_config.check_max_seq_length(self.max_seq_length)

    def features(
        self, tokenizer: Tokenizer, examples: Sequence[SquadExample], is_training: bool
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
