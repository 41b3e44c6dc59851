"""A tiny ALBERT release, as download/download_pretrained_model.py leaves one: Google's
albert_config.json, a Google-named model.ckpt-best and a SentencePiece model with its
.vocab, all made here (random weights, a 100-piece vocabulary trained in a second)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bertfam import tinydata

FOLDER = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CONFIG = {  # Google's keys and spelling ("gelu" is ALBERT's tanh GELU)
    "vocab_size": 100,
    "embedding_size": 16,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_hidden_groups": 1,
    "inner_group_num": 1,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 128,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "down_scale_factor": 1,
}


def tiny_release(folder: Path, seed: int = 0) -> Path:
    import modeling
    import tensorflow as tf

    from bertfam.albert_config import AlbertConfig
    from bertfam.tf.checkpoint import save_name_based_checkpoint, variables_by_name

    folder.mkdir(parents=True, exist_ok=True)
    tinydata.sentencepiece_model(folder / "30k-clean.model")
    (folder / "albert_config.json").write_text(json.dumps(CONFIG, indent=2))
    tf.random.set_seed(seed)
    network = modeling.AlbertForPreTraining(AlbertConfig.from_dict(CONFIG))
    weights = {name: v.numpy() for name, v in variables_by_name(network).items()}
    save_name_based_checkpoint(folder / "model.ckpt-best", weights)
    return folder


def run(args, launcher=(), **kwargs) -> subprocess.CompletedProcess:
    """`python <script> args...` from the folder, as the README runs it."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(
        [*launcher, sys.executable, *map(str, args)],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        **kwargs,
    )


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run_signalling_rank_1(args, after: int) -> subprocess.CompletedProcess:
    """`args` on two Horovod workers, SIGTERM sent to rank 1 alone right after update
    `after` (bertfam.testing.tf_signal_after_update): the other rank must stop with it."""
    from bertfam.testing import horovod_mpirun

    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", SIGNAL_RANK="1")
    return subprocess.run(
        [*horovod_mpirun(), "-x", "SIGNAL_RANK", sys.executable, "-m",
         "bertfam.testing.tf_signal_after_update", str(after), *map(str, args)],
        cwd=FOLDER, capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
