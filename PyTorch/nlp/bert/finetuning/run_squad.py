r"""BERT on SQuAD v1.1 / v2.0 with HuggingFace v3.0.2's run_squad.py command line.

    python finetuning/run_squad.py --model_type bert \
      --model_name_or_path bert-large-uncased-whole-word-masking --cache_dir $MODELS \
      --do_train --do_eval --do_lower_case --data_dir $SQUAD_DIR \
      --train_file train-v1.1.json --predict_file dev-v1.1.json \
      --per_gpu_train_batch_size 24 --learning_rate 3e-5 --num_train_epochs 2 \
      --max_seq_length 384 --doc_stride 128 --output_dir /tmp/squad

Habana's flags (``--use_habana --use_lazy_mode --use_jit_trace --hmp --hmp_bf16 --hmp_fp32
--use_fused_adam --use_fused_clip_norm``) work as upstream's; see the folder's README.
Writes ``predictions_.json`` and ``nbest_predictions_.json`` (``null_odds_.json`` for
v2.0), ``eval_results.txt``, ``checkpoint-<N>/`` folders and the trained model, and
prints the scores as the official evaluate script does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bertfam.errors import FlagError, OneLineParser, exit_on_user_error
from bertfam.folder_modules import folder_module
from bertfam.runlog import configure_logging
from bertfam.squad.data import read_squad_examples
from bertfam.squad.options import SquadOptions
from bertfam.tokenization import load_tokenizer
from bertfam.torch.args import (
    FinetuneConfig,
    add_finetune_flags,
    finetune_config,
    switch,
)
from bertfam.torch.model_files import locate_model

FOLDER = Path(__file__).resolve().parents[1]  # modeling.py
OP_LISTS = FOLDER / "bf16_config"  # Habana's HMP op lists: --hmp's defaults

log = logging.getLogger("run_squad")
PREFIX = ""  # HF v3.0.2 names its files with an empty prefix: predictions_.json


@dataclass(frozen=True, kw_only=True)
class SquadConfig(FinetuneConfig, SquadOptions):
    do_lower_case: bool = False
    eval_all_checkpoints: bool = False
    drop_last: bool = True  # Habana's run_squad drops the last partial batch


def parse_flags(argv=None) -> SquadConfig:
    parser = OneLineParser(prog="run_squad.py", description=__doc__.split("\n")[0])
    parser.add_argument("--model_type", required=True, help="bert (this folder's network)")
    add_finetune_flags(parser)
    squad = parser.add_argument_group("SQuAD")
    squad.add_argument("--data_dir", default=None, help="Folder of --train_file/--predict_file")
    squad.add_argument("--train_file", default=None)
    squad.add_argument("--predict_file", default=None)
    switch(squad, "--do_lower_case", "Lower-case and strip accents (uncased models)")
    switch(squad, "--version_2_with_negative", "SQuAD v2.0: questions may have no answer")
    squad.add_argument("--null_score_diff_threshold", type=float, default=0.0)
    squad.add_argument("--max_seq_length", type=int, default=384)
    squad.add_argument("--doc_stride", type=int, default=128)
    squad.add_argument("--max_query_length", type=int, default=64)
    squad.add_argument("--n_best_size", type=int, default=20)
    squad.add_argument("--max_answer_length", type=int, default=30)
    switch(squad, "--eval_all_checkpoints", "Also evaluate every checkpoint-N in --output_dir")
    switch(squad, "--verbose_logging", "Log at DEBUG level")
    switch(squad, "--overwrite_cache", "Rebuild the features (they are never cached: always)")
    args = parser.parse_args(argv)
    if args.model_type.lower() != "bert":
        raise FlagError(
            f"--model_type {args.model_type}: this folder fine-tunes BERT (--model_type bert)"
        )
    configure_logging(verbose=args.verbose_logging)
    return finetune_config(
        args,
        SquadConfig,
        str(OP_LISTS / "ops_bf16_bert.txt"),
        str(OP_LISTS / "ops_fp32_bert.txt"),
        train_file=_data_path(args.data_dir, args.train_file),
        predict_file=_data_path(args.data_dir, args.predict_file),
        do_lower_case=args.do_lower_case,
        version_2_with_negative=args.version_2_with_negative,
        null_score_diff_threshold=args.null_score_diff_threshold,
        max_seq_length=args.max_seq_length,
        doc_stride=args.doc_stride,
        max_query_length=args.max_query_length,
        n_best_size=args.n_best_size,
        max_answer_length=args.max_answer_length,
        eval_all_checkpoints=args.eval_all_checkpoints,
    )


def _data_path(data_dir: Optional[str], name: Optional[str]) -> Optional[str]:
    """HF's rule: a file name is read from --data_dir when one is given."""
    if not name:
        return None
    return str(Path(data_dir) / name) if data_dir else name


def prepare(config: SquadConfig):
    """Every input read and checked, before torch loads."""
    files = locate_model(config)
    config.check_inputs(files.model_config, train=config.do_train, predict=config.do_eval)
    tokenizer = load_tokenizer(str(files.vocab_file), config.do_lower_case, files.model_config)

    def features(path, is_training):
        examples = read_squad_examples(
            path, is_training=is_training, version_2_with_negative=config.version_2_with_negative
        )
        return examples, config.features(tokenizer, examples, is_training)

    train = features(config.train_file, True) if config.do_train else None
    dev = features(config.predict_file, False) if config.do_eval else None
    return files, train, dev


def model_inputs(features, with_answers: bool) -> dict:
    import numpy as np

    arrays = {
        "input_ids": features.input_ids,
        "attention_mask": features.input_mask,
        "token_type_ids": features.segment_ids,
    }
    if with_answers:
        arrays["start_positions"] = features.start_positions
        arrays["end_positions"] = features.end_positions
    return {name: np.asarray(values, dtype=np.int64) for name, values in arrays.items()}


def main(argv=None) -> None:
    config = parse_flags(argv)
    files, train, dev = prepare(config)

    modeling = folder_module(FOLDER, "modeling")

    from bertfam.runlog import RunLog
    from bertfam.torch.checkpoint import SavedModel, load_pretrained
    from bertfam.torch.finetune import Trainer
    from bertfam.torch.losses import span_loss
    from bertfam.torch.start import built_from_seed, plot_training, start_run

    model = built_from_seed(
        config.seed, lambda: modeling.BertForQuestionAnswering(files.model_config)
    )
    load_pretrained(model, files.folder, fresh_prefixes=("qa_outputs.",))
    run = start_run(config)  # after the weights load: a mismatch costs no device set-up
    saved = SavedModel(
        files.model_config, str(files.vocab_file), "BertForQuestionAnswering",
        do_lower_case=config.do_lower_case,
    )  # fmt: skip

    def loss(network, batch):
        start, end = network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return span_loss(start, end, batch["start_positions"], batch["end_positions"])

    trainer = Trainer(run, model, loss, saved)
    output_dir = Path(config.output_dir)
    run_log = RunLog(output_dir, enabled=run.is_main)
    with run_log:
        step = 0
        evaluate_dev = None
        if dev is not None and run.is_main:

            def evaluate_dev():
                return evaluate(trainer, config, dev, output_dir)[0]

        if config.do_train:
            resume = files.folder if files.resume_step is not None else None
            step = trainer.train(model_inputs(train[1], True), run_log, resume, evaluate_dev)
            trainer.save_final()
        if evaluate_dev is not None:
            scores, official = evaluate(trainer, config, dev, output_dir)
            run_log.log(step, **scores)
            if config.eval_all_checkpoints:
                evaluate_checkpoints(trainer, config, dev)
            print(json.dumps(official), flush=True)
        run.barrier()
    plot_training(run, run_log)


def evaluate(trainer, config: SquadConfig, dev, output_dir: Path):
    """Predict the dev set, write HF's prediction files and eval_results.txt into
    `output_dir`; returns HF's scores (eval_exact, eval_f1, ...) and what the official
    evaluate script prints for these predictions (v1.1's {exact_match, f1}; v2.0's dict)."""
    from bertfam.atomic import write_json, write_text
    from bertfam.squad.evaluate import evaluate_v1, evaluate_v2, read_dataset

    examples, features = dev

    def forward(network, batch):
        return network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])

    start, end = trainer.predict(model_inputs(features, False), forward)
    predictions = config.predictions(examples, features, start, end)
    write_json(output_dir / f"predictions_{PREFIX}.json", predictions.answers)
    write_json(output_dir / f"nbest_predictions_{PREFIX}.json", predictions.nbest)
    if predictions.null_odds is not None:
        write_json(output_dir / f"null_odds_{PREFIX}.json", predictions.null_odds)
    _, articles = read_dataset(config.predict_file)
    scores = evaluate_v2(articles, predictions.answers, source=config.predict_file)
    log.info("Results: %s", scores)
    write_text(output_dir / "eval_results.txt", "".join(f"{k} = {v}\n" for k, v in scores.items()))
    official = scores
    if not config.version_2_with_negative:
        official = evaluate_v1(articles, predictions.answers, source=config.predict_file)
    return {f"eval_{key}": value for key, value in scores.items()}, official


def evaluate_checkpoints(trainer, config: SquadConfig, dev) -> None:
    """--eval_all_checkpoints: each checkpoint-N scored into its own folder."""
    from bertfam.torch.checkpoint import checkpoint_folders, load_pretrained

    for folder in checkpoint_folders(Path(config.output_dir)):
        load_pretrained(trainer.model, folder)
        scores, _ = evaluate(trainer, config, dev, folder)
        log.info("%s: %s", folder.name, scores)


if __name__ == "__main__":
    exit_on_user_error(main)()
