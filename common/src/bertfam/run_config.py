"""What every fine-tuning run has in common, checked before any framework is imported.

`TrainingRunConfig` holds the flags all fine-tuning scripts share (model, vocab, output,
optimizer, schedule, checkpoints, workers, precision); the task configs
(`bertfam.squad.run.SquadRunConfig`, `bertfam.classifier.run.ClassifierRunConfig`) add
their own fields. The checks here are the ones every task makes: files present, batch
sizes sane, the vocab matching the model, Horovod installed when asked for, the bf16 JSON
valid. They raise `RunFlagError`, one line for the user.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from bertfam.bert_config import BertConfig
from bertfam.errors import UserError
from bertfam.precision import load_bf16_config
from bertfam.tf import HOROVOD_INSTALL_HINT
from bertfam.tokenization.wordpiece import WordPieceTokenizer

# google-research/bert shuffles training examples and records with these; a fixed seed
# also gives the same order in every run, so a resumed run skips exactly what it saw.
SHUFFLE_SEED = 12345
SHUFFLE_BUFFER = 100
# The index file tf.train.CheckpointManager writes last, beside the checkpoints.
CHECKPOINT_INDEX_FILE = "checkpoint"


class RunFlagError(UserError):
    """Flags that cannot work together, or input files that are not there."""


@dataclass(frozen=True, kw_only=True)
class TrainingRunConfig:
    model_config_file: str
    vocab_file: str
    output_dir: str
    init_checkpoint: Optional[str] = None
    do_lower_case: bool = True
    do_train: bool = False
    train_batch_size: int = 32
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    num_train_steps: Optional[int] = None
    warmup_proportion: float = 0.1
    num_accumulation_steps: int = 1
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 1
    keep_checkpoint_max: int = 1
    use_horovod: bool = False
    horovod_hierarchical_allreduce: bool = False
    profile: str = ""  # "START,END": profile those updates
    deterministic_run: bool = False
    deterministic_seed: int = 1
    device: str = "auto"  # auto, hpu, gpu or cpu
    bf16: Optional[str] = None  # resolved --bf16_config_path / TF_BF16_CONVERSION
    # Optimizer constants: Google's for BERT; DistilBERT passes Habana's tuned ones.
    weight_decay_rate: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999

    def train_steps(self, num_examples: int, world_size: int) -> int:
        """--num_train_steps, else Google's int(examples / global batch * epochs)."""
        if self.num_train_steps:
            return int(self.num_train_steps)
        global_batch = self.train_batch_size * world_size * self.num_accumulation_steps
        steps = int(num_examples / global_batch * self.num_train_epochs)
        if steps < 1:
            raise RunFlagError(
                f"{num_examples} training examples at a global batch of {global_batch} for "
                f"{self.num_train_epochs} epochs give no update: lower --train_batch_size or "
                "raise --num_train_epochs / --num_train_steps"
            )
        return steps

    def warmup_steps(self, total_steps: int) -> int:
        return int(total_steps * self.warmup_proportion)

    def profile_steps(self) -> Optional[Tuple[int, int]]:
        """--profile=START,END as (START, END), or None."""
        if not self.profile:
            return None
        try:
            start, end = (int(part) for part in self.profile.split(","))
        except ValueError:
            raise RunFlagError(
                f"--profile={self.profile!r}: expected START,END update numbers, e.g. 10,20"
            ) from None
        if not 0 <= start < end:
            raise RunFlagError(f"--profile={self.profile!r}: need 0 <= START < END")
        return start, end


def require_file(path: Optional[str], flag: str) -> None:
    if not path:
        raise RunFlagError(f"--{flag} is required")
    if not Path(path).is_file():
        raise RunFlagError(f"--{flag}={path}: no such file")


def has_checkpoint(output_dir: str) -> bool:
    """Whether a run has left checkpoints in `output_dir` (without loading TensorFlow)."""
    return (Path(output_dir) / CHECKPOINT_INDEX_FILE).is_file()


def horovod_installed() -> bool:
    """Without importing it (that would load TensorFlow before the checks are done)."""
    try:
        return importlib.util.find_spec("horovod.tensorflow") is not None
    except ImportError:
        return False


def _may_run_on_gaudi(device: str) -> bool:
    """Whether the run can land on an HPU (without importing a framework to find out)."""
    if device.strip().lower() not in ("auto", "hpu", "gaudi"):
        return False
    try:
        return importlib.util.find_spec("habana_frameworks") is not None
    except ImportError:
        return False


def check_common(config: TrainingRunConfig, model_config: BertConfig, max_seq_length: int) -> None:
    """The checks every task makes; `max_seq_length` is the task's."""
    model_config.check_max_seq_length(max_seq_length)
    if config.init_checkpoint and not (
        Path(config.init_checkpoint).is_dir() or Path(f"{config.init_checkpoint}.index").is_file()
    ):
        raise RunFlagError(
            f"--init_checkpoint={config.init_checkpoint}: no such checkpoint (expected "
            f"{config.init_checkpoint}.index, or a HuggingFace model folder)"
        )
    config.profile_steps()  # a malformed range fails here
    for flag in ("train_batch_size", "num_accumulation_steps"):
        if getattr(config, flag) < 1:
            raise RunFlagError(f"--{flag} must be at least 1")
    if config.use_horovod and not horovod_installed():
        raise RunFlagError(
            f"--use_horovod=true needs Horovod, which is not installed. {HOROVOD_INSTALL_HINT}"
        )
    if config.bf16 in ("full", "basic") and not _may_run_on_gaudi(config.device):
        raise RunFlagError(
            f"TF_BF16_CONVERSION={config.bf16} is a mode of Habana's converter and this run "
            "cannot be on Gaudi: give the JSON instead "
            "(--bf16_config_path=bf16_config/<model>.json)"
        )
    if config.bf16 not in (None, "full", "basic"):
        load_bf16_config(config.bf16)


def load_tokenizer(config: TrainingRunConfig, model_config: BertConfig) -> WordPieceTokenizer:
    """The vocabulary, refused when its size is not the model's."""
    tokenizer = WordPieceTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    if tokenizer.vocab_size != model_config.vocab_size:
        raise RunFlagError(
            f"the vocab file {tokenizer.vocab_file} has {tokenizer.vocab_size} tokens but "
            f"{model_config.source} says vocab_size={model_config.vocab_size}: they must "
            "come from the same model"
        )
    return tokenizer
