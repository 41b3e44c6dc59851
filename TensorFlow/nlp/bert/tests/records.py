"""Pre-training records for the tests, made by the real data_preprocessing/create_pretraining_data.py."""

import subprocess
import sys
from pathlib import Path

CREATE = Path(__file__).resolve().parents[1] / "data_preprocessing" / "create_pretraining_data.py"


def create_records(corpus, outputs, vocab, length, predictions, *extra: str) -> None:
    """Write the instances of `corpus` to the files `outputs` (one path or a list) with
    --dupe_factor=1 and any `extra` flags (--random_seed=..., --short_seq_prob=...)."""
    paths = [outputs] if isinstance(outputs, (str, Path)) else outputs
    subprocess.run(
        [sys.executable, str(CREATE), f"--input_file={corpus}",
         f"--output_file={','.join(str(p) for p in paths)}", f"--vocab_file={vocab}",
         f"--max_seq_length={length}", f"--max_predictions_per_seq={predictions}",
         "--dupe_factor=1", *extra],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
