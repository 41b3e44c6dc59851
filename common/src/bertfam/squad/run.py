"""Everything a SQuAD fine-tuning run checks before it imports a framework.

`prepare(config)` reads the model config, the vocabulary and the SQuAD files and checks
every flag combination, so that bad input costs a second and prints one line, before
TensorFlow or PyTorch is even imported (whose start-up chatter would bury the message).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from bertfam.bert_config import BertConfig
from bertfam.errors import UserError
from bertfam.precision import load_bf16_config
from bertfam.squad.data import SquadExample, read_squad_examples
from bertfam.squad.features import validate_lengths
from bertfam.tf import HOROVOD_INSTALL_HINT
from bertfam.tokenization.wordpiece import WordPieceTokenizer

EXAMPLE_SHUFFLE_SEED = 12345  # google-research/bert shuffles training examples with this
EVAL_RESULTS_FILE = "eval_results.txt"


class SquadFlagError(UserError):
    """Flags that cannot work together, or input files that are not there."""


@dataclass(frozen=True)
class SquadRunConfig:
    model_config_file: str
    vocab_file: str
    output_dir: str
    init_checkpoint: Optional[str] = None
    do_lower_case: bool = True
    do_train: bool = False
    do_predict: bool = False
    do_eval: bool = False
    train_file: Optional[str] = None
    predict_file: Optional[str] = None
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    train_batch_size: int = 32
    predict_batch_size: int = 8
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    num_train_steps: Optional[int] = None
    warmup_proportion: float = 0.1
    num_accumulation_steps: int = 1
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 1
    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0
    use_horovod: bool = False
    deterministic_run: bool = False
    deterministic_seed: int = 1
    keep_checkpoint_max: int = 1
    device: str = "auto"  # auto, hpu, gpu or cpu
    bf16: Optional[str] = None  # resolved --bf16_config_path / TF_BF16_CONVERSION
    # Optimizer constants: Google's for BERT; DistilBERT passes Habana's tuned ones.
    weight_decay_rate: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999


def _require_file(path: Optional[str], flag: str) -> None:
    if not path:
        raise SquadFlagError(f"--{flag} is required")
    if not Path(path).is_file():
        raise SquadFlagError(f"--{flag}={path}: no such file")


def validate(config: SquadRunConfig, model_config: BertConfig) -> None:
    """google-research/bert `validate_flags_or_throw`, plus the checks it left to chance."""
    if not (config.do_train or config.do_predict):
        raise SquadFlagError("at least one of --do_train or --do_predict must be true")
    if config.do_eval and not config.do_predict:
        raise SquadFlagError("--do_eval scores the predictions, so it needs --do_predict=true")
    if config.do_eval and config.version_2_with_negative:
        raise SquadFlagError(
            "--do_eval scores SQuAD v1.1 only, as upstream; score v2.0 predictions with "
            "bertfam-squad-evaluate <predict_file> <output_dir>/predictions.json"
        )
    if config.do_train:
        _require_file(config.train_file, "train_file")
    if config.do_predict:
        _require_file(config.predict_file, "predict_file")
    if config.max_seq_length > model_config.max_position_embeddings:
        raise SquadFlagError(
            f"--max_seq_length={config.max_seq_length} is longer than the model's "
            f"max_position_embeddings ({model_config.max_position_embeddings})"
        )
    try:
        validate_lengths(config.max_seq_length, config.doc_stride, config.max_query_length)
    except UserError as error:
        raise SquadFlagError(str(error)) from None
    if config.init_checkpoint and not (
        Path(config.init_checkpoint).is_dir() or Path(f"{config.init_checkpoint}.index").is_file()
    ):
        raise SquadFlagError(
            f"--init_checkpoint={config.init_checkpoint}: no such checkpoint (expected "
            f"{config.init_checkpoint}.index, or a HuggingFace model folder)"
        )
    for flag in ("train_batch_size", "predict_batch_size", "num_accumulation_steps"):
        if getattr(config, flag) < 1:
            raise SquadFlagError(f"--{flag} must be at least 1")


def check_vocab_matches(tokenizer: WordPieceTokenizer, model_config: BertConfig) -> None:
    if tokenizer.vocab_size != model_config.vocab_size:
        raise SquadFlagError(
            f"the vocab file {tokenizer.vocab_file} has {tokenizer.vocab_size} tokens but "
            f"{model_config.source} says vocab_size={model_config.vocab_size}: they must "
            "come from the same model"
        )


def _horovod_installed() -> bool:
    """Without importing it (that would load TensorFlow before the checks are done)."""
    try:
        return importlib.util.find_spec("horovod.tensorflow") is not None
    except ImportError:
        return False


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
    if config.use_horovod and not _horovod_installed():
        raise SquadFlagError(
            f"--use_horovod=true needs Horovod, which is not installed. {HOROVOD_INSTALL_HINT}"
        )
    if config.bf16 not in (None, "full", "basic"):
        load_bf16_config(config.bf16)
    tokenizer = WordPieceTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    check_vocab_matches(tokenizer, model_config)
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
