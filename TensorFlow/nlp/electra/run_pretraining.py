r"""ELECTRA pre-training (replaced-token detection), with NVIDIA's TF2 ELECTRA command line
(Habana's recipe: ``scripts/electra.sh`` runs it twice, phase 1 then phase 2).

    python run_pretraining.py --model_name=base --model_size=base \
      --pretrain_tfrecords="$DATA/tfrecord/seq_len_128/books_wiki_en_corpus/training/*" \
      --vocab_file=$DATA/vocab.txt --max_seq_length=128 --train_batch_size=64 \
      --optimizer=lamb --skip_adaptive --learning_rate=6e-3 --num_train_steps=10000 \
      --num_warmup_steps=2000 --save_checkpoints_steps=1000 --disc_weight=50.0 \
      --generator_hidden_size=0.3333333 --opt_beta_1=0.878 --opt_beta_2=0.974 \
      --lr_decay_power=0.5 --log_freq=10
    python run_pretraining.py --model_name=base ... --max_seq_length=512 \
      --restore_checkpoint=latest --phase2

The records are BERT's (only ``input_ids``, ``input_mask``, ``segment_ids`` are read);
the masks, the generator's samples and both losses are `objective`'s. Under ``mpirun
-np N`` the N processes train data-parallel with Horovod, each on its
``--train_batch_size`` rows of every global batch.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from pretraining_config import (  # noqa: E402
    ElectraPretrainingConfig,
    Prepared,
    config_from_flags,
    parse_flags,
    prepare,
    write_pretrain_config,
)

from bertfam.errors import UserError, report_and_exit  # noqa: E402

PROG = "run_pretraining.py"
METRICS = ("masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy", "disc_loss",
           "disc_accuracy", "disc_precision", "disc_recall")  # fmt: skip


class TrainLog:
    """The loop's records to metrics.jsonl/TensorBoard and, under upstream's names, to
    DLLogger (``total_loss``, the metrics, ``train_perf``)."""

    def __init__(self, run_log, dllog):
        self.run_log, self.dllog, self.last = run_log, dllog, None

    def log(self, step: int, **scalars) -> dict:
        self.last = scalars
        self.dllog.log(
            step,
            {
                "total_loss": scalars["loss"],
                **{name: scalars[name] for name in METRICS},
                "train_perf": scalars["sequences_per_second"],
                "learning_rate": scalars["learning_rate"],
            },
        )
        return self.run_log.log(step, **scalars)


def electra_dataset(config: ElectraPretrainingConfig, prepared: Prepared, workers):
    """This worker's rows of the global batches, masked (each global batch from its
    index) and numbered (each row's global index seeds its samples)."""
    import tensorflow as tf
    from objective import SpecialIds, mask_batch, max_predictions, with_global_counts

    from bertfam.tf.flow import own_rows
    from bertfam.tf.pretraining_records import pretraining_dataset

    length, slots = config.max_seq_length, max_predictions(config.mask_prob, config.max_seq_length)
    spec = {
        name: tf.io.FixedLenFeature([length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    global_batch = config.train_batch_size * workers.size
    vocab = prepared.special_ids
    ids = SpecialIds(vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"])
    batches = pretraining_dataset(
        prepared.files, global_batch, length, slots, True, seed=config.seed, spec=spec
    )

    def masked(index, batch):
        seed = tf.stack([tf.constant(config.seed, tf.int64), index])
        batch = mask_batch(batch, ids, config.mask_prob, slots, seed)
        rows = index * global_batch + tf.range(global_batch, dtype=tf.int64)
        return {**with_global_counts(batch), "row_ids": rows}

    return own_rows(batches.enumerate().map(masked), config.train_batch_size, workers)


def load_weights(config: ElectraPretrainingConfig, variables) -> None:
    """--load_weights: the discriminator's and the generator's folders in --weights_dir
    (HuggingFace layout, as postprocess_pretrained_ckpt.py writes them); the shared
    tables from the discriminator's."""
    from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint

    for part in ("discriminator", "generator"):
        weights, source = read_init_checkpoint(os.path.join(config.weights_dir, part))
        if part == "generator":
            weights = {k: v for k, v in weights.items() if not k.startswith("electra/")}
        mine = {
            name: v
            for name, v in variables.items()
            if name.startswith("generator") == (part == "generator")  # and generator_predictions
        }
        assign_weights(mine, weights, source)


def train(config: ElectraPretrainingConfig, prepared: Prepared) -> None:
    import modeling
    import tensorflow as tf
    from objective import electra_loss

    from bertfam.checkpoint_names import ELECTRA_PHASE2
    from bertfam.dllogger import DlLogger
    from bertfam.runlog import RunLog
    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.flow import plot_training, ready_trainer, start_run
    from bertfam.tf.optimization import adamw, lamb

    started = time.time()
    tf.config.optimizer.set_jit(config.xla)
    run = start_run(config, prepared.model_config)
    workers = run.workers
    if workers.is_main_process:
        write_pretrain_config(config, run.model_config)
    tf.random.set_seed(config.seed)  # the same initial weights for the same --seed
    model = modeling.ElectraPretrainingModel(
        run.model_config, config.generator_hidden_size, run.precision
    )
    variables = variables_by_name(model)
    if config.load_weights:
        load_weights(config, variables)

    def loss_fn(batch, training):
        return electra_loss(
            model, batch, config.disc_weight, None, config.seed, training, workers.size
        )

    def restore(trainer):
        restored = prepared.restore_from
        if restored is None:
            return
        if config.restore_checkpoint == "latest":  # past a damaged newest one, saying so
            restored = trainer.checkpoints.restore_newest()
        else:
            trainer.checkpoints.restore(restored)
        if config.phase2 and ELECTRA_PHASE2.step(restored) is None:
            trainer.step.assign(0)  # phase 2 counts its own updates from phase 1's weights
        print(f"Restored {restored} at step {int(trainer.step)}", file=sys.stderr)

    if config.optimizer == "lamb":
        optimizer = partial(lamb, adapt_excluded=not config.skip_adaptive)
    else:
        optimizer = adamw
    trainer = ready_trainer(
        config, run, variables, loss_fn, config.num_train_steps, None, optimizer, restore=restore
    )
    os.makedirs(config.log_dir, exist_ok=True)
    summary = config.json_summary or os.path.join(config.log_dir, "dllogger.log")
    dllog = DlLogger(summary, workers.is_main_process)
    with RunLog(config.log_dir, enabled=workers.is_main_process) as run_log:
        log = TrainLog(run_log, dllog)
        first = int(trainer.step)
        trainer.train(electra_dataset(config, prepared, workers), log)
    elapsed = time.time() - started
    if log.last is not None:
        sequences = (int(trainer.step) - first) * config.train_batch_size
        sequences *= config.num_accumulation_steps * workers.size
        dllog.log(
            (),
            {
                "training_sequences_per_second": log.last["sequences_per_second"],
                "final_loss": log.last["loss"],
                "e2e_train_time": elapsed,
                "sequences": sequences,
            },
        )
    if workers.is_main_process:
        plot_training(Path(config.log_dir))


def main(argv=None) -> None:
    args = parse_flags(argv)
    try:
        config = config_from_flags(args)
        prepared = prepare(config)
        train(config, prepared)
    except UserError as error:
        report_and_exit(error, prog=PROG)


if __name__ == "__main__":
    main()
