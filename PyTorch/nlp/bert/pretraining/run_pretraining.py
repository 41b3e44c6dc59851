r"""BERT pre-training (masked LM + next sentence) with NVIDIA's run_pretraining.py command line.

    python pretraining/run_pretraining.py --do_train --config_file pretraining/bert_config.json \
      --input_dir $DATA/hdf5_lower_case_1_seq_len_128_max_pred_20_.../books_wiki_en_corpus \
      --output_dir /results/checkpoints --json-summary /results/dllogger.json \
      --train_batch_size 8192 --gradient_accumulation_steps 128 --max_seq_length 128 \
      --max_predictions_per_seq 20 --max_steps 7038 --warmup_proportion 0.2843 \
      --learning_rate 6e-3 --num_steps_per_checkpoint 200 --allreduce_post_accumulation

Phase 2 adds ``--resume_from_checkpoint --phase2 --phase1_end_step 7038`` with the 512/80
shards; several processes run under ``mpirun`` or ``torchrun``. Habana's flags
(``--use_habana --use_lazy_mode --use_jit_trace --hmp --use_fused_lamb``) work as
upstream's. Writes ``ckpt_<step>.pt`` (the last 3 kept), DLLogger lines at
``--json-summary``, metrics.jsonl, TensorBoard and metrics.png; see the folder's README.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from bertfam.errors import OneLineParser, exit_on_user_error
from bertfam.folder_modules import folder_module
from bertfam.runlog import configure_logging
from bertfam.torch.pretraining_args import (
    PretrainingConfig,
    add_pretraining_flags,
    pretraining_config,
)

FOLDER = Path(__file__).resolve().parents[1]  # modeling.py
OP_LISTS = FOLDER / "bf16_config"  # Habana's HMP op lists: --hmp's defaults

log = logging.getLogger("run_pretraining")


def parse_flags(argv=None) -> PretrainingConfig:
    parser = OneLineParser(prog="run_pretraining.py", description=__doc__.split("\n")[0])
    add_pretraining_flags(parser)
    args = parser.parse_args(argv)
    return pretraining_config(
        args, str(OP_LISTS / "ops_bf16_bert_pt.txt"), str(OP_LISTS / "ops_fp32_bert_pt.txt")
    )


def starting_weights(config: PretrainingConfig, start):
    """(weights, their source) the model starts from, or None: the run's checkpoint, or
    --init_checkpoint (a ckpt_<step>.pt, ours or NVIDIA's, a ``{"model": state_dict}``
    file, or a HuggingFace folder). The loader maps the names and fits the vocabulary."""
    from bertfam.checkpoints import find_hf_folder, read_hf_weights

    if start.checkpoint is not None:
        tensors = start.checkpoint["model"]
        return {name: t.float().cpu().numpy() for name, t in tensors.items()}, "the checkpoint"
    if not config.init_checkpoint:
        return None
    path = Path(config.init_checkpoint)
    weights_file = find_hf_folder(path).weights_file if path.is_dir() else path
    return read_hf_weights(weights_file), str(weights_file)


def losses(model, batch):
    from bertfam.torch.losses import pretraining_losses

    mlm, nsp = model(
        batch["input_ids"],
        batch["attention_mask"],
        batch["token_type_ids"],
        masked_positions=batch["masked_positions"],
    )
    return pretraining_losses(mlm, batch["masked_labels"], nsp, batch["next_sentence_labels"])


def main(argv=None) -> None:
    config = parse_flags(argv)
    configure_logging()

    modeling = folder_module(FOLDER, "modeling")

    from bertfam.bert_config import BertConfig
    from bertfam.dllogger import DlLogger
    from bertfam.runlog import RunLog
    from bertfam.torch.checkpoint import load_weights
    from bertfam.torch.pretraining import Pretrainer, find_start, padded_vocab_size
    from bertfam.torch.pretraining_data import check_shard_widths, training_shards
    from bertfam.torch.start import plot_training, seed_everything, start_run

    shards = training_shards(config.input_dir)
    check_shard_widths(shards[0], config.max_seq_length, config.max_predictions_per_seq)
    start = find_start(config, shards)
    model_config = BertConfig.from_json_file(config.config_file)
    model_config.check_max_seq_length(config.max_seq_length)
    model_config = dataclasses.replace(
        model_config, vocab_size=padded_vocab_size(model_config.vocab_size)
    )
    seed_everything(config.seed)  # the fresh weights are the seed's on every process
    model = modeling.BertForPreTraining(model_config)
    model.bert.encoder.checkpoint_activations = config.checkpoint_activations
    found = starting_weights(config, start)
    if found is not None:
        # A warm start may come from a folder without the heads (a bare BertModel);
        # continuing a run's own checkpoint needs every weight.
        fresh = ("cls.",) if start.checkpoint is None else ()
        load_weights(model, *found, fresh_prefixes=fresh)  # one line, before any device set-up
    run = start_run(config, seed_per_rank=True)
    trainer = Pretrainer(run, model, losses, shards)
    trainer.restore(start)
    if run.is_main:
        Path(config.json_summary).resolve().parent.mkdir(parents=True, exist_ok=True)
    dllog = DlLogger(config.json_summary, run.is_main)
    dllog.log("PARAMETER", {"Config": [str(config)]})
    dllog.log("PARAMETER", {"SEED": config.seed})
    dllog.log("PARAMETER", {"train_start": True, "batch_size_per_pu": config.train_batch_size})
    dllog.log("PARAMETER", {"learning_rate": config.learning_rate})
    log.info(
        "%d shards, %d updates of %d x %d x %d sequences (micro-batch x accumulation x "
        "processes), from update %d",
        len(shards), config.max_steps, config.train_batch_size, config.gradient_accumulation_steps,
        run.world_size, trainer.step,
    )  # fmt: skip
    with RunLog(config.output_dir, enabled=run.is_main) as run_log:
        trainer.train(run_log, dllog)
    plot_training(run, run_log)


if __name__ == "__main__":
    exit_on_user_error(main)()
