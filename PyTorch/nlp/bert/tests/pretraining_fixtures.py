"""Tiny hdf5 shards (made by the real create_pretraining_data.py) and a tiny config for the
pre-training tests, and a way to run run_pretraining.py as users do."""

import subprocess
import sys
from pathlib import Path

from bertfam import tinydata

FOLDER = Path(__file__).resolve().parents[1]
CREATE = FOLDER / "pretraining" / "data" / "create_pretraining_data.py"
RUN = FOLDER / "pretraining" / "run_pretraining.py"


def make_shards(
    folder: Path, vocab: Path, length: int, predictions: int, count=2, seed=1, documents=80
):
    """`count` shards named like bertPrep's (``*_training_<i>.hdf5``) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = tinydata.pretraining_corpus(
        folder / "corpus.txt", vocab, seed=seed, documents=documents
    )
    outputs = ",".join(
        str(folder / f"books_wiki_en_corpus_training_{i}.hdf5") for i in range(count)
    )
    subprocess.run(
        [sys.executable, str(CREATE), f"--input_file={corpus}", f"--output_file={outputs}",
         f"--vocab_file={vocab}", "--do_lower_case", f"--max_seq_length={length}",
         f"--max_predictions_per_seq={predictions}", f"--random_seed={seed}", "--dupe_factor=2"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (folder / "corpus.txt").unlink()
    return folder


def first_words(source: Path, path: Path, count: int = 4000) -> Path:
    """The first `count` entries of a real WordPiece vocabulary (specials, characters and
    the commonest words): for runs whose micro-batches are large, where projecting onto
    30,522 words would be most of the step's time on a CPU."""
    words = source.read_text(encoding="utf-8").splitlines()[:count]
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


def tiny_config(path: Path, vocab: Path, dropout: float = 0.0) -> Path:
    size = len(vocab.read_text(encoding="utf-8").splitlines())
    return tinydata.bert_config_file(
        path,
        size,
        max_position_embeddings=512,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def run_pretraining(*args, launcher=(), timeout=600, env=None):
    return subprocess.run(
        [*launcher, sys.executable, str(RUN), *map(str, args)],
        cwd=FOLDER, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def flags(data, config, output, **overrides):
    """run_pretraining.py's flags for a few tiny updates at 64/10."""
    values = {
        "input_dir": data,
        "config_file": config,
        "output_dir": output,
        "json-summary": Path(output).parent / f"{Path(output).name}_dllogger.json",
        "train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "max_seq_length": 64,
        "max_predictions_per_seq": 10,
        "max_steps": 4,
        "warmup_proportion": 0.25,
        "learning_rate": 1e-3,
        "num_steps_per_checkpoint": 2,
        "no_cuda": True,
        "do_train": True,
        "disable_progress_bar": True,
    }
    values.update(overrides)
    args = []
    for key, value in values.items():
        if value is True:
            args.append(f"--{key}")
        elif value is not None and value is not False:
            args += [f"--{key}", str(value)]
    return args
