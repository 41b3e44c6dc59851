"""Fetch BERT-base's vocabulary and convert HuggingFace's DistilBERT into a TF checkpoint.

Upstream (Habana Model-References, TensorFlow/nlp/distilbert/README.md), run from
TensorFlow/nlp/distilbert:

    $PYTHON download/download_pretrained_model.py \\
            "https://storage.googleapis.com/bert_models/2020_02_20/" \\
            "uncased_L-12_H-768_A-12" \\
            "distilbert-base-uncased" \\
            False

The arguments are positional, as upstream: `<base_url> <bert_model_name>
<hf_distilbert> <flatten>`. The script

1. fetches and unpacks Google's `<bert_model_name>.zip` into
   `<package_dir>/<bert_model_name>/` (as BERT's download script does; flatten as there):
   DistilBERT uses its vocab.txt;
2. gets the HuggingFace DistilBERT `<hf_distilbert>`: a hub id (looked up in the current
   directory and the HuggingFace cache first, else downloaded from the hub, or from
   ``--hf_endpoint`` / ``HF_ENDPOINT``), a local model folder, or an archive of one
   (a path or a ``file://`` / ``http(s)://`` URL);
3. writes `<bert_model_name>/distilbert_config.json` (BERT's schema, from the HuggingFace
   config) and the checkpoint `<bert_model_name>/<hf name>.ckpt-1.{index,data-...}` plus
   its `checkpoint` file, whose names are those run_squad.py's network uses.

Where we differ from upstream:

- distilbert_config.json describes the converted model (upstream copies BERT-base's
  config with 6 layers and 16 token types), with DistilBERT's ``sinusoidal_pos_embds``
  and ``qa_dropout``; the vocab must have the model's vocab_size, or nothing is written.
- The conversion needs no transformers: the weights are read from the folder's files
  and checked against the network's variable names and shapes before anything is
  written. The checkpoint's .index file is written last, so it is there only when the
  checkpoint is complete; a rerun with it present (and the config) does nothing.
- Downloads resume when run again; files fetched for the conversion are deleted after it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

from bertfam.atomic import write_json, write_text
from bertfam.checkpoint_names import TF_STATE_FILE, tf_state_text
from bertfam.checkpoints import CheckpointError, hf_folder_weights_as_tf, hf_model_type
from bertfam.distilbert_config import DistilBertConfig
from bertfam.errors import OneLineParser, exit_on_user_error
from bertfam.folder_modules import folder_module
from bertfam.google_checkpoint import (
    add_archive_arguments,
    add_layout_arguments,
    download_pretrained_model,
)
from bertfam.hub import default_endpoint, fetch_hf_model, model_short_name

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CONFIG_FILE = "distilbert_config.json"
POSITIONS = "distilbert/embeddings/embeddings"


def checkpoint_prefix(bert_dir: Path, hf_source: str) -> Path:
    """`<bert_dir>/<hf name>.ckpt-1`, the prefix upstream's tf.train.Checkpoint.save gives."""
    return bert_dir / f"{model_short_name(hf_source)}.ckpt-1"


def read_distilbert_config(folder) -> DistilBertConfig:
    model_type = hf_model_type(folder)
    if model_type != "distilbert":
        raise CheckpointError(
            f"{folder.config_file}: model_type is {model_type!r}, not 'distilbert'"
        )
    return DistilBertConfig.from_json_file(folder.config_file)


def check_vocab(config: DistilBertConfig, vocab_file: Path) -> None:
    try:
        size = len(vocab_file.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{vocab_file}: cannot read it ({error})") from None
    if size != config.vocab_size:
        raise CheckpointError(
            f"{vocab_file} has {size} tokens but {config.source} says vocab_size "
            f"{config.vocab_size}: pick the BERT model whose vocab DistilBERT was trained on"
        )


def checked_weights(folder, config: DistilBertConfig) -> dict:
    """The folder's weights under our names, checked against the network they are for."""
    # TensorFlow loads here, once the inputs are known to be good.
    modeling = folder_module(PACKAGE_DIR, "modeling")

    from bertfam.checkpoints import match_weights
    from bertfam.tf.checkpoint import variables_by_name

    weights = hf_folder_weights_as_tf(folder)
    model = modeling.DistilBertForQuestionAnswering(config)
    shapes = {name: tuple(v.shape) for name, v in variables_by_name(model).items()}
    # A base model has no QA head: run_squad.py trains it from scratch.
    report = match_weights(shapes, weights, str(folder.weights_file), ("cls/squad/",))
    kept = list(report.restored)
    if config.sinusoidal_pos_embds and POSITIONS in weights:
        kept.append(POSITIONS)  # a fixed table, not trained, but kept as HuggingFace keeps it
    return {name: weights[name] for name in kept}


def write_checkpoint(prefix: Path, weights: dict) -> None:
    """Name-based TF checkpoint at `prefix`; its .index appears last, when all is written."""
    from bertfam.tf.checkpoint import save_name_based_checkpoint

    scratch = prefix.with_name(f".{prefix.name}.partial")
    save_name_based_checkpoint(scratch, weights)
    os.replace(f"{scratch}.data-00000-of-00001", f"{prefix}.data-00000-of-00001")
    os.replace(f"{scratch}.index", f"{prefix}.index")
    write_text(prefix.parent / TF_STATE_FILE, tf_state_text(prefix.name, [prefix.name]))


def convert_distilbert(
    bert_dir: Path, hf_source: str, endpoint: str, progress: bool = True
) -> Path:
    """Write distilbert_config.json and the checkpoint into `bert_dir`; return the prefix."""
    prefix = checkpoint_prefix(bert_dir, hf_source)
    if Path(f"{prefix}.index").is_file() and (bert_dir / CONFIG_FILE).is_file():
        print(f"{prefix} already converted: nothing to do")
        return prefix
    staging = bert_dir.parent / f".{model_short_name(hf_source)}.download"
    folder = fetch_hf_model(hf_source, staging, endpoint, progress=progress)
    print(f"Converting {folder.weights_file}")
    config = read_distilbert_config(folder)
    check_vocab(config, bert_dir / "vocab.txt")
    weights = checked_weights(folder, config)
    write_json(bert_dir / CONFIG_FILE, config.to_dict())
    write_checkpoint(prefix, weights)
    shutil.rmtree(staging, ignore_errors=True)
    print(f"Wrote {bert_dir / CONFIG_FILE} and {prefix}")
    return prefix


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        description="BERT's vocab from Google and DistilBERT from HuggingFace, as a TF checkpoint"
    )
    add_archive_arguments(parser)
    parser.add_argument(
        "hf_distilbert",
        help="HuggingFace DistilBERT: a hub id (distilbert-base-uncased), a model folder, "
        "or an archive of one (path or URL)",
    )
    add_layout_arguments(parser, PACKAGE_DIR)
    parser.add_argument(
        "--hf_endpoint",
        default=default_endpoint(),
        help="where hub ids are downloaded from (default: $HF_ENDPOINT or huggingface.co)",
    )
    return parser


@exit_on_user_error
def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    progress = sys.stderr.isatty()
    bert_dir = download_pretrained_model(
        args.base_url,
        args.model_name,
        args.flatten,
        dest_dir=args.dest_dir,
        sha256=args.sha256,
        progress=progress,
    )
    convert_distilbert(bert_dir, args.hf_distilbert, args.hf_endpoint, progress)


if __name__ == "__main__":
    main()
