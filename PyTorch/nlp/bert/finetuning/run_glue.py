r"""BERT on GLUE (MRPC and the other tasks `bertfam.glue` reads) with HuggingFace
v3.0.2's run_glue.py command line.

    python finetuning/run_glue.py --model_name_or_path bert-base-uncased --cache_dir $MODELS \
      --task_name MRPC --do_train --do_eval --data_dir $GLUE_DIR/MRPC \
      --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 2e-5 \
      --num_train_epochs 3 --output_dir /tmp/mrpc --overwrite_output_dir

Habana's flags work as upstream's; see the folder's README. Writes
``eval_results_<task>.txt`` (eval_loss, eval_acc, eval_f1, eval_acc_and_f1, epoch for
MRPC), ``test_results_<task>.txt`` with ``--do_predict``, ``checkpoint-<N>/`` folders and
the trained model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bertfam.errors import FlagError, OneLineParser, exit_on_user_error
from bertfam.folder_modules import folder_module
from bertfam.glue.features import convert_examples_to_features
from bertfam.glue.readers import get_processor
from bertfam.runlog import configure_logging
from bertfam.tokenization import load_tokenizer
from bertfam.torch.args import (
    FinetuneConfig,
    add_finetune_flags,
    finetune_config,
    switch,
)
from bertfam.torch.checkpoint import saved_do_lower_case
from bertfam.torch.model_files import locate_model

FOLDER = Path(__file__).resolve().parents[1]  # modeling.py
OP_LISTS = FOLDER / "bf16_config"  # Habana's HMP op lists: --hmp's defaults

log = logging.getLogger("run_glue")


@dataclass(frozen=True, kw_only=True)
class GlueConfig(FinetuneConfig):
    task_name: str
    data_dir: str
    max_seq_length: int = 128
    do_predict: bool = False


def parse_flags(argv=None) -> GlueConfig:
    parser = OneLineParser(prog="run_glue.py", description=__doc__.split("\n")[0])
    add_finetune_flags(parser)
    glue = parser.add_argument_group("GLUE")
    glue.add_argument("--task_name", required=True, help="mrpc, cola, mnli or xnli (any case)")
    glue.add_argument("--data_dir", required=True, help="The task's TSV files")
    glue.add_argument("--max_seq_length", type=int, default=128)
    switch(glue, "--do_predict", "Label the test set into test_results_<task>.txt")
    switch(glue, "--dataloader_drop_last", "Drop the last partial training batch")
    switch(glue, "--overwrite_cache", "Accepted: features are rebuilt every run, never cached")
    args = parser.parse_args(argv)
    configure_logging()
    config = finetune_config(
        args,
        GlueConfig,
        str(OP_LISTS / "ops_bf16_bert.txt"),
        str(OP_LISTS / "ops_fp32_bert.txt"),
        task_name=args.task_name.lower(),
        data_dir=args.data_dir,
        max_seq_length=args.max_seq_length,
        do_predict=args.do_predict,
        drop_last=args.dataloader_drop_last,
    )
    return config


def prepare(config: GlueConfig):
    """Every input read and checked, before torch loads."""
    processor = get_processor(config.task_name)  # an unknown task lists the known ones
    if not Path(config.data_dir).is_dir():
        raise FlagError(f"--data_dir={config.data_dir}: no such directory")
    files = locate_model(config)
    files.model_config.check_max_seq_length(config.max_seq_length)
    tokenizer = load_tokenizer(
        str(files.vocab_file), saved_do_lower_case(files.folder), files.model_config
    )
    labels = processor.get_labels()

    def features(examples):
        return convert_examples_to_features(examples, labels, config.max_seq_length, tokenizer)

    train = features(processor.get_train_examples(config.data_dir)) if config.do_train else None
    dev = features(processor.get_dev_examples(config.data_dir)) if config.do_eval else None
    if dev is not None and len(dev) == 0:
        raise FlagError(f"--do_eval: the dev set in {config.data_dir} has no examples")
    test = features(processor.get_test_examples(config.data_dir)) if config.do_predict else None
    return files, labels, train, dev, test


def model_inputs(features) -> dict:
    import numpy as np

    return {
        "input_ids": np.asarray(features.input_ids, dtype=np.int64),
        "attention_mask": np.asarray(features.input_mask, dtype=np.int64),
        "token_type_ids": np.asarray(features.segment_ids, dtype=np.int64),
        "labels": np.asarray(features.label_ids, dtype=np.int64),
    }


def main(argv=None) -> None:
    config = parse_flags(argv)
    files, labels, train, dev, test = prepare(config)

    modeling = folder_module(FOLDER, "modeling")

    from bertfam.runlog import RunLog
    from bertfam.torch.checkpoint import SavedModel, load_pretrained
    from bertfam.torch.finetune import Trainer
    from bertfam.torch.losses import classification_loss
    from bertfam.torch.start import built_from_seed, plot_training, start_run

    model = built_from_seed(
        config.seed,
        lambda: modeling.BertForSequenceClassification(files.model_config, num_labels=len(labels)),
    )
    load_pretrained(model, files.folder, fresh_prefixes=("classifier.",))
    run = start_run(config)  # after the weights load: a mismatch costs no device set-up
    saved = SavedModel(
        files.model_config,
        str(files.vocab_file),
        "BertForSequenceClassification",
        extra_config={
            "finetuning_task": config.task_name,
            "id2label": {str(i): label for i, label in enumerate(labels)},
            "label2id": {label: i for i, label in enumerate(labels)},
        },
        do_lower_case=saved_do_lower_case(files.folder),
    )

    def loss(network, batch):
        logits = network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        return classification_loss(logits, batch["labels"])

    trainer = Trainer(run, model, loss, saved)
    output_dir = Path(config.output_dir)
    run_log = RunLog(output_dir, enabled=run.is_main)
    with run_log:
        step = 0
        evaluate_dev = None
        if dev is not None and run.is_main:

            def evaluate_dev():
                return evaluate(trainer, config, dev)

        if config.do_train:
            resume = files.folder if files.resume_step is not None else None
            step = trainer.train(model_inputs(train), run_log, resume, evaluate_dev)
            trainer.save_final()
        if evaluate_dev is not None:
            results = {**evaluate_dev(), "epoch": trainer.epoch}
            run_log.log(step, **results)
            write_results(output_dir / f"eval_results_{config.task_name}.txt", results)
        if test is not None and run.is_main:
            predict_test(trainer, config, labels, test)
        run.barrier()
    plot_training(run, run_log)


def _logits(trainer, features):
    def forward(network, batch):
        return (network(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]),)

    (logits,) = trainer.predict(model_inputs(features), forward)
    return logits


def evaluate(trainer, config: GlueConfig, features) -> dict:
    """HF v3.0.2's eval dict: eval_loss (the mean of batch means) and the task metrics."""
    import numpy as np

    from bertfam.glue.metrics import hf_glue_metrics

    logits = _logits(trainer, features).astype(np.float64)
    labels = np.asarray(features.label_ids)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    per_example = -log_probs[np.arange(len(labels)), labels]
    size = config.eval_batch_size
    batch_means = [per_example[i : i + size].mean() for i in range(0, len(labels), size)]
    metrics = hf_glue_metrics(config.task_name, logits.argmax(axis=1), labels)
    results = {"eval_loss": float(np.mean(batch_means))}
    results.update({f"eval_{name}": value for name, value in metrics.items()})
    log.info("Eval results: %s", results)
    return results


def write_results(path: Path, results: dict) -> None:
    from bertfam.atomic import write_text

    write_text(path, "".join(f"{key} = {value}\n" for key, value in results.items()))


def predict_test(trainer, config: GlueConfig, labels, features) -> None:
    from bertfam.atomic import write_text

    predictions = _logits(trainer, features).argmax(axis=1)
    lines = ["index\tprediction\n"] + [
        f"{index}\t{labels[item]}\n" for index, item in enumerate(predictions)
    ]
    write_text(Path(config.output_dir) / f"test_results_{config.task_name}.txt", "".join(lines))


if __name__ == "__main__":
    exit_on_user_error(main)()
