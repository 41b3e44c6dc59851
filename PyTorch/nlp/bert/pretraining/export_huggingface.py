r"""A pre-training checkpoint as a HuggingFace folder, for fine-tuning and for HuggingFace.

    python pretraining/export_huggingface.py --checkpoint /results/checkpoints/ckpt_8601.pt \
      --config_file pretraining/bert_config.json --vocab_file $BERT_DIR/vocab.txt \
      --output_dir /results/bert-large-pretrained

Reads our ``ckpt_<step>.pt``, NVIDIA's or Habana's (their ``dense_act`` names), or a
``{"model": state_dict}`` file. Writes config.json, pytorch_model.bin
(``BertForPreTraining``: encoder and both heads, under HuggingFace's names) and vocab.txt
into a folder that appears whole.
``finetuning/run_squad.py --model_name_or_path <that folder>`` and HuggingFace's
``BertForPreTraining.from_pretrained`` load it. The vocabulary rows pre-training padded
to a multiple of 8 are dropped again, so the config's ``vocab_size`` is the vocabulary's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bertfam.errors import OneLineParser, UserError, exit_on_user_error, require_file
from bertfam.folder_modules import folder_module
from bertfam.runlog import configure_logging

FOLDER = Path(__file__).resolve().parents[1]  # modeling.py

log = logging.getLogger("export_huggingface")


def parse_args(argv=None):
    parser = OneLineParser(prog="export_huggingface.py", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="ckpt_<step>.pt, ours or NVIDIA's")
    parser.add_argument("--config_file", required=True, help="The BERT config it trained with")
    parser.add_argument("--vocab_file", required=True, help="vocab.txt, copied into the folder")
    parser.add_argument("--output_dir", required=True, help="The HuggingFace folder to write")
    args = parser.parse_args(argv)
    for flag in ("checkpoint", "config_file", "vocab_file"):
        require_file(getattr(args, flag), flag)
    if Path(args.output_dir).exists():
        raise UserError(f"--output_dir={args.output_dir} exists: give a new folder")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    configure_logging()

    modeling = folder_module(FOLDER, "modeling")

    from bertfam.bert_config import BertConfig
    from bertfam.checkpoints import read_hf_weights
    from bertfam.torch.checkpoint import load_weights, save_pretrained

    config = BertConfig.from_json_file(args.config_file)
    weights = read_hf_weights(args.checkpoint)  # our ckpt_N.pt, NVIDIA's or Habana's
    model = modeling.BertForPreTraining(config)
    load_weights(model, weights, args.checkpoint)  # every weight, or one line naming them
    save_pretrained(model, config, args.output_dir, vocab_file=args.vocab_file)
    log.info("Wrote %s from %s", args.output_dir, args.checkpoint)


if __name__ == "__main__":
    exit_on_user_error(main)()
