r"""ELECTRA SQuAD v1.1/v2.0 fine-tuning, prediction and evaluation, with NVIDIA's TF2
ELECTRA command line (Habana's recipe: ``scripts/electra_squad.sh`` runs it).

    python run_tf_squad.py --electra_model=google/electra-base-discriminator \
      --data_dir=$SQUAD --vocab_file=vocab/vocab.txt --do_lower_case --do_train \
      --train_batch_size=16 --learning_rate=4e-4 --num_train_epochs=2 \
      --warmup_proportion 0.05 --weight_decay_rate 0.01 --layerwise_lr_decay 0.8 \
      --max_seq_length=384 --doc_stride=128 --beam_size 5 --joint_head True \
      --null_score_diff_threshold -5.6 --do_predict --predict_batch_size=128 \
      --do_eval --eval_script=$SQUAD/evaluate-v1.1.py --output_dir=results/

Windows are the shared SQuAD pipeline's (cached as upstream names them); the network is
`modeling.ElectraForQuestionAnswering` (joint beam-search head by default); the loop is
the shared one with NVIDIA's optimizer (bias-corrected AdamWeightDecay, layer-wise rate
decay, linear warm-up and decay). Each epoch ends with a checkpoint
(``checkpoints/electra_base_qa_v2_<v2>_epoch_<n>_ckpt``, which ``--init_checkpoint``
reads back); the last one (every one with ``--evaluate_during_training``) with
predictions, the evaluation script's EM/F1 and upstream's summary lines. A run stopped
by SIGTERM (or killed) goes on from its resume checkpoint
(``checkpoints/electra_base_qa_v2_<v2>_resume``) when the same command runs again. Under ``mpirun
-np N`` the N processes train data-parallel with Horovod; rank 0 predicts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # before TensorFlow loads: fewer banners

from squad_config import (  # noqa: E402
    PROG,
    ElectraSquadConfig,
    Prepared,
    cached_features,
    config_from_flags,
    parse_flags,
    prepare,
)

from bertfam.errors import UserError, report_and_exit  # noqa: E402
from bertfam.runlog import configure_logging  # noqa: E402

log = logging.getLogger(PROG)


class EvalScriptError(UserError):
    """--eval_script failed or printed no scores."""


class TrainLog:
    """The loop's records to metrics.jsonl/TensorBoard, upstream's step line on stdout and
    DLLogger's ``step_loss`` / ``train_perf`` at (epoch, step in epoch)."""

    def __init__(self, run_log, dllog, updates_per_epoch: int, is_main_process: bool):
        self.run_log, self.dllog = run_log, dllog
        self.updates_per_epoch = updates_per_epoch
        self.is_main_process = is_main_process
        self.last: Optional[dict] = None

    def log(self, step: int, **scalars) -> dict:
        self.last = scalars
        epoch, iteration = divmod(step - 1, self.updates_per_epoch)
        if self.is_main_process:
            print(
                f"Epoch: {epoch:03d}, Step:{iteration:6d}, Loss:{scalars['loss']:12.8f}, "
                f"Perf:{scalars['sequences_per_second']:5.0f}, loss_scale:1, opt_step:{step}",
                flush=True,
            )
        self.dllog.log(
            [epoch, iteration],
            {"step_loss": scalars["loss"], "train_perf": scalars["sequences_per_second"]},
        )
        return self.run_log.log(step, **scalars)


def epoch_checkpoint(config: ElectraSquadConfig, epoch: int) -> str:
    """Upstream's per-epoch checkpoint prefix, relative to the working directory."""
    v2 = "True" if config.version_2_with_negative else "False"
    return os.path.join("checkpoints", f"electra_base_qa_v2_{v2}_epoch_{epoch}_ckpt")


def build_model(config: ElectraSquadConfig, run):
    import modeling

    return modeling.ElectraForQuestionAnswering(
        run.model_config,
        run.precision,
        joint_head=config.joint_head,
        beam_size=config.beam_size,
        version_2_with_negative=config.version_2_with_negative,
    )


def starting_weights(config: ElectraSquadConfig, prepared: Prepared, variables):
    """Training: --electra_model's encoder, the SQuAD head fresh. Otherwise: all of
    --init_checkpoint. Read and checked against the model before anything changes."""
    from layerwise_decay import HEADS

    from bertfam.checkpoints import ELECTRA_TABLE
    from bertfam.tf.flow import checked_weights

    if config.do_train:
        return checked_weights(str(prepared.folder.path), variables, HEADS, ELECTRA_TABLE)
    return checked_weights(config.init_checkpoint, variables, (), ELECTRA_TABLE)


def fine_tune(config, run, model, variables, features, run_log, dllog, after_epoch) -> float:
    """Train epoch by epoch, calling `after_epoch(epoch, last)` after each; returns the
    last epoch's training throughput (sequences a second, all workers)."""
    from layerwise_decay import rate_multipliers

    from bertfam.tf.flow import ready_trainer, worker_batches
    from bertfam.tf.losses import joint_loss, span_loss
    from bertfam.tf.optimization import adamw
    from bertfam.tf.squad import TRAINING_ARRAYS

    workers = run.workers
    layers = run.model_config.num_hidden_layers

    def optimizer(named, settings):
        multipliers = rate_multipliers(named, layers, settings.layerwise_lr_decay)
        return adamw(
            named, settings, bias_correction=settings.bias_correction, rate_multipliers=multipliers
        )

    def loss_fn(batch, training):
        ids, mask, segments = batch["input_ids"], batch["input_mask"], batch["segment_ids"]
        starts, ends = batch["start_positions"], batch["end_positions"]
        if config.joint_head:
            start, end, cls = model.joint_training_logits(ids, mask, segments, starts)
            return joint_loss(start, end, cls, starts, ends), {}
        start, end = model(ids, mask, segments, training=training)
        return span_loss(start, end, starts, ends), {}

    total = config.schedule_steps(len(features), workers.size)
    per_epoch = config.updates_per_epoch(len(features), workers.size)
    trainer = ready_trainer(config, run, variables, loss_fn, total, None, optimizer)
    resumed_at = int(trainer.step)  # 0 for a fresh start: checkpoints hold an update or more
    arrays = {key: getattr(features, key) for key in TRAINING_ARRAYS}
    batches = worker_batches(arrays, config.train_batch_size, workers)
    global_batch = config.train_batch_size * config.num_accumulation_steps * workers.size
    log.info("***** Running training *****")
    log.info("  Num windows = %d, epochs = %d", len(features), config.num_train_epochs)
    log.info("  Global batch = %d, updates an epoch = %d, schedule = %d", global_batch,
             per_epoch, total)  # fmt: skip
    train_log = TrainLog(run_log, dllog, per_epoch, workers.is_main_process)
    throughput, trained = 0.0, 0.0
    for epoch in range(config.num_train_epochs):
        until = (epoch + 1) * per_epoch
        if config.max_steps > 0:
            until = min(until, config.max_steps)
        if resumed_at and (
            until < resumed_at
            or (
                until == resumed_at
                and Path(f"{epoch_checkpoint(config, epoch + 1)}.index").exists()
            )
        ):
            continue  # finished (checkpoint written, predictions made) before the stop
        started, first = time.perf_counter(), int(trainer.step)
        if until > first:
            trainer.train(batches, train_log, until=until)
        seconds = time.perf_counter() - started
        trained += seconds
        throughput = (int(trainer.step) - first) * global_batch / max(seconds, 1e-9)
        final_loss = train_log.last["loss"] if train_log.last else float("nan")
        dllog.log([], {"e2e_train_time": trained, "training_sequences_per_second": throughput,
                       "final_loss": final_loss})  # fmt: skip
        if workers.is_main_process and not config.skip_checkpoint:
            save_epoch_checkpoint(config, variables, epoch + 1)
        after_epoch(epoch, epoch == config.num_train_epochs - 1)
    if workers.is_main_process:  # trained to the end: nothing left to resume
        shutil.rmtree(config.checkpoint_dir, ignore_errors=True)
    return throughput


def save_epoch_checkpoint(config: ElectraSquadConfig, variables, epoch: int) -> None:
    from bertfam.tf.checkpoint import save_name_based_checkpoint

    prefix = epoch_checkpoint(config, epoch)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    save_name_based_checkpoint(prefix, {name: v.read_value() for name, v in variables.items()})
    log.info("wrote %s", prefix)


def predict(config: ElectraSquadConfig, model, features, examples):
    """(predictions, each batch's seconds): the model on every dev window, answers as the
    head's post-processing makes them."""
    import numpy as np
    import tensorflow as tf

    from bertfam.runlog import progress
    from bertfam.squad.beam import BeamOutputs, beam_predictions

    if config.joint_head:
        step = tf.function(model.joint_beams, autograph=False)
    else:
        step = tf.function(
            lambda ids, mask, segments: model(ids, mask, segments, False), autograph=False
        )
    size, outputs, latencies = config.predict_batch_size, [], []
    batches = range(0, len(features), size)
    for first in progress(batches, desc="predict", unit="batch", enabled=config.progress_bars):
        window = slice(first, first + size)
        started = time.perf_counter()
        out = step(features.input_ids[window], features.input_mask[window],
                   features.segment_ids[window])  # fmt: skip
        outputs.append([tensor.numpy() for tensor in out])
        latencies.append(time.perf_counter() - started)
    columns = [np.concatenate(column) for column in zip(*outputs)]
    settings = dict(
        n_best_size=config.n_best_size,
        max_answer_length=config.max_answer_length,
        version_2_with_negative=config.version_2_with_negative,
        null_score_diff_threshold=config.null_score_diff_threshold,
    )
    if config.joint_head:
        return beam_predictions(examples, features, BeamOutputs(*columns), **settings), latencies
    return config.predictions(examples, features, *columns), latencies


def run_eval_script(config: ElectraSquadConfig, predictions_file: Path) -> dict:
    """``python <eval_script> <dev file> <predictions>``, its output shown; its scores
    ({"exact_match", "f1"}, percentages; v2.0's "exact" read as exact_match)."""
    command = [sys.executable, config.eval_script, config.predict_file, str(predictions_file)]
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise EvalScriptError(f"--eval_script={config.eval_script} failed: {why}")
    try:
        scores = json.loads(done.stdout[done.stdout.index("{") :])
        return {"exact_match": scores.get("exact_match", scores.get("exact")), "f1": scores["f1"]}
    except (ValueError, KeyError):
        raise EvalScriptError(
            f"--eval_script={config.eval_script} printed no JSON scores with 'f1'"
        ) from None


def latency_summary(epoch: int, latencies: List[float]) -> str:
    """Upstream's line: the two slowest batches dropped, then the mean and the means of
    the fastest 90/95/99% (upstream's "percentiles"), in milliseconds."""
    kept = sorted(latencies)[:-2] if len(latencies) > 2 else sorted(latencies)

    def fastest_mean(share: float) -> float:
        count = max(1, int(len(kept) * share))
        return 1000 * sum(kept[:count]) / count

    return (
        f"**LATENCY SUMMARY** - Epoch: {epoch:03d},  Ave: {fastest_mean(1.0):6.3f} ms, "
        f"90%: {fastest_mean(0.9):6.3f} ms, 95%: {fastest_mean(0.95):6.3f} ms, "
        f"99%: {fastest_mean(0.99):6.3f} ms"
    )


def squad(config: ElectraSquadConfig, prepared: Prepared) -> dict:
    """Train / predict / evaluate as the flags say; returns the last EM/F1 (or {})."""
    import tensorflow as tf

    from bertfam.dllogger import DlLogger
    from bertfam.runlog import RunLog
    from bertfam.squad.postprocess import PREDICTIONS_FILE, write_predictions
    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.flow import plot_training, start_run

    tf.config.optimizer.set_jit(config.xla)
    run = start_run(config, prepared.model_config)
    workers = run.workers
    main_process = workers.is_main_process
    tf.random.set_seed(config.seed)
    model = build_model(config, run)
    variables = variables_by_name(model)
    start = starting_weights(config, prepared, variables)
    train_features = dev_features = None
    if config.do_train:
        train_features = cached_features(config, prepared, "train", write=main_process)
    if config.do_predict and main_process:
        dev_features = cached_features(config, prepared, "dev", write=True)
    if main_process:
        Path(config.json_summary).parent.mkdir(parents=True, exist_ok=True)
    dllog = DlLogger(config.json_summary, main_process)
    dllog.log("PARAMETER", {"SEED": config.seed})
    start.assign(variables)
    scores: dict = {}
    inference = {"rate": 0.0}

    def predict_and_evaluate(epoch: int, last: bool) -> None:
        if not (config.do_predict and main_process and (last or config.evaluate_during_training)):
            return
        started = time.perf_counter()
        predictions, latencies = predict(config, model, dev_features, prepared.predict_examples)
        inference_time = time.perf_counter() - started
        for path in write_predictions(predictions, run.output_dir):
            log.info("wrote %s", path)
        rate = sum(config.predict_batch_size / max(s, 1e-9) for s in latencies) / len(latencies)
        inference["rate"] = rate
        if config.do_eval:
            scores.update(run_eval_script(config, run.output_dir / PREDICTIONS_FILE))
            print(f"Epoch: {epoch:03d} Results: {scores}")
            print(f"**EVAL SUMMARY** - Epoch: {epoch:03d},  EM: {scores['exact_match']:6.3f}, "
                  f"F1: {scores['f1']:6.3f}, Infer_Perf: {rate:4.0f} seq/s")  # fmt: skip
        print(latency_summary(epoch, latencies), flush=True)
        dllog.log(
            [], {"inference_sequences_per_second": rate, "e2e_inference_time": inference_time}
        )

    with RunLog(run.output_dir, enabled=main_process) as run_log:
        if config.do_train:
            started = time.perf_counter()
            train_rate = fine_tune(config, run, model, variables, train_features, run_log, dllog,
                                   predict_and_evaluate)  # fmt: skip
            train_time = time.perf_counter() - started
        else:
            predict_and_evaluate(0, True)
    if main_process and config.do_train and config.do_eval and scores:
        print(f"**RESULTS SUMMARY** - EM: {scores['exact_match']:6.3f}, F1: {scores['f1']:6.3f}, "
              f"Train_Time: {train_time:4.0f} s, Train_Perf: {train_rate:4.0f} seq/s, "
              f"Infer_Perf: {inference['rate']:4.0f} seq/s", flush=True)  # fmt: skip
    if scores:
        dllog.log([], {"exact_match": scores["exact_match"], "F1": scores["f1"]})
    if main_process and config.do_train:
        plot_training(run.output_dir)
    return scores


def main(argv=None) -> None:
    args = parse_flags(argv)
    configure_logging(verbose=args.verbose_logging)
    try:
        config = config_from_flags(args)
        prepared = prepare(config)
        squad(config, prepared)
    except UserError as error:
        report_and_exit(error, prog=PROG)


if __name__ == "__main__":
    main()
