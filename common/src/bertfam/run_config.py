"""What configures a training run in either framework, framework-free.

`TrainingConfig` holds the fields that the TensorFlow scripts (Google's flags,
`bertfam.tf.run_config.RunConfig`) and the PyTorch scripts (HuggingFace v3.0.2's,
`bertfam.torch.args.FinetuneConfig`) share under one name and meaning; each adds its own
upstream's flags under their own names. `require_at_least_one` is the count check both
make, naming the user's flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from bertfam.errors import FlagError


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    output_dir: str
    do_train: bool = False
    train_batch_size: int = 32  # per device (worker) and micro-batch
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    device: str = "auto"  # auto, hpu, gpu or cpu
    progress_bars: bool = True  # on the main process; ELECTRA's --disable-progress-bar


def require_at_least_one(**counts: int) -> None:
    """Each flag (by name, without dashes) must be at least 1."""
    for flag, value in counts.items():
        if value < 1:
            raise FlagError(f"--{flag} must be at least 1 (got {value})")
