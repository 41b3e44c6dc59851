r"""A Google TF BERT checkpoint as a HuggingFace folder: what the fine-tuning scripts load.

    python convert_tf_checkpoint_to_pytorch.py \
      --tf_checkpoint_path $BERT_DIR/bert_model.ckpt \
      --bert_config_file $BERT_DIR/bert_config.json \
      --pytorch_dump_path $MODELS/bert-base-uncased

HuggingFace's converter's flags. The dump is a folder (config.json, pytorch_model.bin and
vocab.txt, from --vocab_file or beside the checkpoint) that `--model_name_or_path` and
HuggingFace's `from_pretrained` take; the pre-training heads (``cls.*``) are kept. Every
encoder weight is checked against the config by name before anything is written.
TensorFlow is needed for this command only (to read the checkpoint).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from pathlib import Path

from bertfam.atomic import atomic_directory
from bertfam.bert_config import BertConfig
from bertfam.checkpoints import CheckpointError, google_weights_as_hf
from bertfam.errors import OneLineParser, UserError, exit_on_user_error
from bertfam.runlog import configure_logging

log = logging.getLogger("convert")


def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="convert_tf_checkpoint_to_pytorch.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tf_checkpoint_path", required=True, help="e.g. .../bert_model.ckpt")
    parser.add_argument(
        "--bert_config_file", required=True, help="The checkpoint's bert_config.json"
    )
    parser.add_argument("--pytorch_dump_path", required=True, help="The folder to write")
    parser.add_argument(
        "--vocab_file", default=None, help="Default: vocab.txt beside the checkpoint"
    )
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> None:
    args = parse_args(argv)
    configure_logging()
    prefix = Path(args.tf_checkpoint_path)
    if not Path(f"{prefix}.index").is_file():
        raise CheckpointError(f"--tf_checkpoint_path={prefix}: no {prefix.name}.index there")
    config = BertConfig.from_json_file(args.bert_config_file)
    vocab = Path(args.vocab_file) if args.vocab_file else prefix.parent / "vocab.txt"
    if not vocab.is_file():
        raise UserError(f"no vocabulary at {vocab}: give --vocab_file")
    if importlib.util.find_spec("tensorflow") is None:
        raise UserError("reading a TF checkpoint needs TensorFlow: pip install tensorflow")

    # TensorFlow only reads a file here: its start-up messages would bury ours.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import modeling
    import torch

    from bertfam.tf.checkpoint import read_tf_checkpoint
    from bertfam.torch.checkpoint import load_weights, write_pretrained

    weights = google_weights_as_hf(read_tf_checkpoint(prefix))
    # Every encoder weight present and shaped as the config says, or one error naming them
    # (the pre-training heads are kept as they are; BertModel has no module for them).
    load_weights(torch.nn.ModuleDict({"bert": modeling.BertModel(config)}), weights, str(prefix))
    folder = Path(args.pytorch_dump_path)
    state = {key: torch.from_numpy(value) for key, value in weights.items()}
    with atomic_directory(folder) as tmp:
        write_pretrained(state, config, tmp, "BertForPreTraining", vocab)
    log.info("Wrote %d tensors from %s to %s", len(weights), prefix, folder)


if __name__ == "__main__":
    main()
