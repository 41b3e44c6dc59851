"""The configuration of a TensorFlow run, from the flags to the loop, checked before
TensorFlow is imported (this module imports neither TensorFlow nor absl).

`RunConfig` (a `bertfam.run_config.TrainingConfig`, the fields the PyTorch side shares)
holds what every TensorFlow script shares, each field named as its flag
(``--train_batch_size`` is ``train_batch_size``, ``--num_accumulation_steps`` is
``num_accumulation_steps``), plus what a model's recipe fixes (``keep_checkpoint_max``,
the optimizer constants). The task configs add their own flags: `SquadRunConfig`
(Google's run_squad.py) and `ClassifierRunConfig` (run_classifier.py). The same object
travels from `bertfam.tf.flags` through the task flow to the training loop.
`check_common` holds the checks every task makes; they raise `FlagError`, one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from bertfam.checkpoint_names import TF_MODEL, StepCheckpoints
from bertfam.devices import habana_installed
from bertfam.errors import FlagError
from bertfam.precision import HABANA_BF16_MODES, load_bf16_config, refuse_habana_mode_off_gaudi
from bertfam.run_config import TrainingConfig, require_at_least_one
from bertfam.squad.options import SquadOptions
from bertfam.tf import HOROVOD_INSTALL_HINT

# google-research/bert shuffles training examples and records with these; a fixed seed
# also gives the same order in every run, so a resumed run skips exactly what it saw.
SHUFFLE_SEED = 12345
SHUFFLE_BUFFER = 100


@dataclass(frozen=True, kw_only=True)
class RunConfig(TrainingConfig):
    """The flags every TensorFlow script shares, and the recipe's fixed settings."""

    model_config_file: str  # --bert_config_file, --distilbert_config_file, ...
    vocab_file: str
    init_checkpoint: Optional[str] = None
    do_lower_case: bool = True
    num_train_steps: Optional[int] = None
    warmup_proportion: float = 0.1
    num_accumulation_steps: int = 1
    save_checkpoints_steps: int = 1000
    save_summary_steps: int = 1
    use_horovod: bool = False
    horovod_hierarchical_allreduce: bool = False
    profile: str = ""  # "START,END": profile those updates
    deterministic_run: bool = False
    deterministic_seed: int = 1
    bf16_config_path: Optional[str] = None  # resolved with TF_BF16_CONVERSION
    # Fixed by the task or the model's recipe, not flags.
    keep_checkpoint_max: int = 1
    schedule: str = "adjusted"  # the learning-rate schedule, bertfam.tf.optimization
    lr_power: float = 1.0  # its polynomial decay power (LAMB pre-training: 0.5)
    weight_decay_rate: float = 0.01
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-6
    clip_norm: float = 1.0
    # What a model's script sets otherwise, as values (filled from other flags when blank).
    tokenizer_file: str = ""  # what the tokenizer loads: --vocab_file (ALBERT: --spm_model_file)
    num_warmup_steps: Optional[int] = None  # warm-up updates; None: warmup_proportion of them
    start_warmup_step: int = 0  # the update warm-up counts from (ALBERT pre-training's flag)
    end_learning_rate: float = 0.0  # where the decay ends (ELECTRA pre-training: --end_lr)
    checkpoint_dir: str = ""  # where training checkpoints go: --output_dir (ELECTRA: its own)
    checkpoint_names: StepCheckpoints = TF_MODEL  # their layout (ELECTRA's: ckpt-N, ckpt-p2-N)
    saves_checkpoints: bool = True  # False: the run saves none (ELECTRA's --skip_checkpoint)
    resume_hint: str = "rerun the same command to resume"  # said when a run is preempted

    def __post_init__(self):
        # Blanks follow the flag they default to; filled once, when the config is made.
        if not self.tokenizer_file:
            object.__setattr__(self, "tokenizer_file", self.vocab_file)
        if not self.checkpoint_dir:
            object.__setattr__(self, "checkpoint_dir", self.output_dir)

    def train_steps(self, num_examples: int, world_size: int) -> int:
        """--num_train_steps, else Google's int(examples / global batch * epochs)."""
        if self.num_train_steps:
            return int(self.num_train_steps)
        global_batch = self.train_batch_size * world_size * self.num_accumulation_steps
        steps = int(num_examples / global_batch * self.num_train_epochs)
        if steps < 1:
            raise FlagError(
                f"{num_examples} training examples at a global batch of {global_batch} for "
                f"{self.num_train_epochs} epochs give no update: lower --train_batch_size or "
                "raise --num_train_epochs / --num_train_steps"
            )
        return steps

    def warmup_steps(self, total_steps: int) -> int:
        """--num_warmup_steps (or a script's like flag), else Google's proportion."""
        if self.num_warmup_steps is not None:
            return self.num_warmup_steps
        return int(total_steps * self.warmup_proportion)

    def profile_steps(self) -> Optional[Tuple[int, int]]:
        """--profile=START,END as (START, END), or None."""
        if not self.profile:
            return None
        try:
            start, end = (int(part) for part in self.profile.split(","))
        except ValueError:
            raise FlagError(
                f"--profile={self.profile!r}: expected START,END update numbers, e.g. 10,20"
            ) from None
        if not 0 <= start < end:
            raise FlagError(f"--profile={self.profile!r}: need 0 <= START < END")
        return start, end


@dataclass(frozen=True, kw_only=True)
class SquadRunConfig(RunConfig, SquadOptions):
    """Google's run_squad.py: the shared flags, the SQuAD settings and its own."""

    do_predict: bool = False
    do_eval: bool = False
    predict_batch_size: int = 8


@dataclass(frozen=True, kw_only=True)
class ClassifierRunConfig(RunConfig):
    """Google's run_classifier.py, with Habana's --dropout_before_logits."""

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


def horovod_installed() -> bool:
    """Without importing it (that would load TensorFlow before the checks are done)."""
    import importlib.util

    try:
        return importlib.util.find_spec("horovod.tensorflow") is not None
    except ImportError:
        return False


def may_run_on_gaudi(device: str) -> bool:
    """Whether the run can land on an HPU (without importing a framework to find out)."""
    return device.strip().lower() in ("auto", "hpu", "gaudi") and habana_installed()


def check_common(config: RunConfig) -> None:
    """The checks every task makes (each task checks its sequence length itself)."""
    if config.init_checkpoint and not (
        Path(config.init_checkpoint).is_dir() or Path(f"{config.init_checkpoint}.index").is_file()
    ):
        raise FlagError(
            f"--init_checkpoint={config.init_checkpoint}: no such checkpoint (expected "
            f"{config.init_checkpoint}.index, or a HuggingFace model folder)"
        )
    config.profile_steps()  # a malformed range fails here
    require_at_least_one(
        train_batch_size=config.train_batch_size,
        num_accumulation_steps=config.num_accumulation_steps,
    )
    if config.use_horovod and not horovod_installed():
        raise FlagError(
            f"--use_horovod=true needs Horovod, which is not installed. {HOROVOD_INSTALL_HINT}"
        )
    if not may_run_on_gaudi(config.device):
        refuse_habana_mode_off_gaudi(config.bf16_config_path, "this run")
    if config.bf16_config_path not in (None, *HABANA_BF16_MODES):
        load_bf16_config(config.bf16_config_path)
