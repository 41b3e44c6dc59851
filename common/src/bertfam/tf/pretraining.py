"""Masked-LM + next-sentence pre-training, as the upstream TF ``run_pretraining.py`` runs it.

A model folder's ``run_pretraining.py`` hands its recipe to
`bertfam.tf.scripts.pretraining_script`; the flags become a `PretrainingRunConfig`,
`prepare_pretraining` checks them and the records (TensorFlow loaded, nothing written
yet), and `run_pretraining` trains and evaluates:

- input: every file of each ``--input_files_dir`` (comma-separated), read by
  `bertfam.tf.pretraining_records.pretraining_dataset` (Google's input_fn) at the global
  batch size, each Horovod worker keeping its rows of every batch: N workers train
  exactly like one process with N times the batch (upstream gives each worker its own
  files, which no single process can reproduce);
- model: the recipe's ``pretraining_model(config, precision)``, mapping (input_ids,
  input_mask, segment_ids, masked_lm_positions, training) to (masked-LM logits,
  next-sentence logits); loss ``total_loss = mlm_loss + nsp_loss``
  (`bertfam.tf.losses`);
- optimizer: ``--optimizer_type=lamb`` (polynomial decay with power 0.5 from the peak)
  or ``adam`` (AdamWeightDecay, power 1 from the adjusted start), warm-up over
  ``--num_warmup_steps``, the peak multiplied by the number of workers as upstream does;
- ``--init_checkpoint`` warm-starts (Google's ``bert_model.ckpt``, heads included, or a
  phase-1 ``model.ckpt-N``), and with ``--resume`` the run continues from it (step and
  optimizer state); a checkpoint of our own in ``--output_dir`` always wins, so rerunning
  a killed command continues it; two checkpoints are kept;
- ``--do_eval``: ``eval_results.txt`` with Google's keys, pooled over ``--max_eval_steps``
  batches as `metric_fn` pools them;
- logs: ``metrics.jsonl``, TensorBoard and a loss plot in ``--output_dir``, and
  DLLogger-style ``DLLL {...}`` lines at ``--dllog_path`` every ``--display_loss_steps``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from bertfam.dllogger import DlLogger
from bertfam.errors import FlagError, UserError
from bertfam.run_config import require_at_least_one
from bertfam.tf.run_config import RunConfig, check_common

log = logging.getLogger(__name__)

EVAL_RESULTS_FILE = "eval_results.txt"


@dataclass(frozen=True, kw_only=True)
class PretrainingRunConfig(RunConfig):
    """The upstream TF run_pretraining.py's flags."""

    vocab_file: str = ""  # pre-training reads token ids: no vocabulary
    input_files_dir: str = ""
    eval_files_dir: Optional[str] = None
    max_seq_length: int = 512
    max_predictions_per_seq: int = 80
    do_eval: bool = False
    eval_batch_size: int = 8
    max_eval_steps: int = 100
    optimizer_type: str = "lamb"
    num_train_steps: Optional[int] = 100000
    num_warmup_steps: int = 10000
    resume: bool = False
    dllog_path: str = "/results/bert_dllog.json"
    display_loss_steps: int = 10
    keep_checkpoint_max: int = 2
    sentence_task: str = "next_sentence"  # its eval keys; ALBERT's: sentence_order
    # ALBERT's --masked_lm_budget: > 0 masks each record as it is read (from its
    # token_boundary) with the vocabulary's [MASK] id; records then hold no masks to read.
    masked_lm_budget: float = 0.0
    mask_id: int = 103  # [MASK] in BERT's vocabularies


@dataclass(frozen=True)
class PretrainingInputs:
    """The records a run trains and evaluates on."""

    train_files: List[str]
    eval_files: List[str]
    avg_seq_per_sample: Optional[float] = None  # packed training records when set


@dataclass(frozen=True)
class OptimizerChoice:
    """The optimizer the flags name (a `bertfam.tf.optimization` factory) and the decay
    of the learning rate it trains with."""

    factory: Callable
    schedule: str
    lr_power: float


@dataclass(frozen=True)
class PretrainingVariant:
    """How a model's ``run_pretraining.py`` differs from Habana BERT's, handed to the
    shared `prepare_pretraining`: where its records are (`inputs`), which optimizer its
    flags name (`optimizer`), and whether the peak rate is multiplied by the number of
    workers. ALBERT's is in ``albert/pretraining_v1.py``."""

    inputs: Callable[[PretrainingRunConfig], PretrainingInputs]
    optimizer: Callable[[PretrainingRunConfig], OptimizerChoice]
    rate_per_worker: bool = True


def directory_inputs(config: PretrainingRunConfig) -> PretrainingInputs:
    """Habana BERT's: every file of each ``--input_files_dir`` / ``--eval_files_dir``,
    training records packed when the directories' metadata says so."""
    train_files, eval_files, packed = [], [], None
    if config.do_train:
        if not config.input_files_dir:
            raise FlagError("--do_train needs --input_files_dir")
        train_files = input_files(config.input_files_dir, "input_files_dir")
        packed = packing_of(config.input_files_dir)
    if config.do_eval:
        if not config.eval_files_dir:
            raise FlagError("--do_eval needs --eval_files_dir")
        eval_files = input_files(config.eval_files_dir, "eval_files_dir")
        if packing_of(config.eval_files_dir) is not None:
            raise FlagError("--eval_files_dir: evaluation reads unpacked records (as upstream)")
    return PretrainingInputs(train_files, eval_files, packed)


def habana_optimizer(config: PretrainingRunConfig) -> OptimizerChoice:
    """``--optimizer_type=lamb``: NVIDIA's LAMB, decaying from the peak with power 0.5;
    ``adam``: AdamWeightDecay on the recipe's schedule."""
    from bertfam.tf.optimization import adamw, lamb

    if config.optimizer_type == "lamb":
        return OptimizerChoice(lamb, "google", 0.5)
    return OptimizerChoice(adamw, config.schedule, config.lr_power)


HABANA_BERT = PretrainingVariant(directory_inputs, habana_optimizer)


def record_masking(config: PretrainingRunConfig, vocab_size: int):
    """With --masked_lm_budget, the masking each record gets as it is read (the same
    draws in training and evaluation, seeded as upstream), else None."""
    if config.masked_lm_budget <= 0:
        return None
    from bertfam.pretraining.ngram_masking import OnTheFlyMasking

    return OnTheFlyMasking(
        config.masked_lm_budget, config.max_predictions_per_seq, vocab_size, config.mask_id, 12345
    )


def input_files(directories: str, flag: str) -> List[str]:
    """Every file of each comma-separated directory, sorted (upstream globs ``<dir>/*``)."""
    files: List[str] = []
    for directory in directories.split(","):
        folder = Path(directory)
        if not folder.is_dir():
            raise FlagError(f"--{flag}={directory}: no such directory")
        found = sorted(str(path) for path in folder.iterdir() if path.is_file())
        if not found:
            raise FlagError(f"--{flag}={directory}: the directory has no record files")
        files.extend(found)
    return files


def packed_metadata(directory: str) -> Path:
    """``<dir>_metadata.json`` beside a packed directory (how upstream detects packing)."""
    folder = Path(directory.rstrip("/"))
    return folder.parent / f"{folder.name}_metadata.json"


@dataclass(frozen=True)
class PreparedPretraining:
    """Everything checked before the run starts, and what the flags imply for it."""

    model_config: object
    inputs: PretrainingInputs
    optimizer: OptimizerChoice
    rate_per_worker: bool


def packing_of(directories: str) -> Optional[float]:
    """``avg_seq_per_sample`` of packed directories (their ``<dir>_metadata.json``), or
    None for unpacked ones; a mix, or metadata without the key, is refused."""
    values = []
    for directory in directories.split(","):
        path = packed_metadata(directory)
        if not path.exists():
            values.append(None)
            continue
        try:
            value = json.loads(path.read_text(encoding="utf-8"))["avg_seq_per_sample"]
        except (OSError, ValueError, KeyError, TypeError):
            raise UserError(f"{path}: no avg_seq_per_sample in this packing metadata") from None
        values.append(float(value))
    if len(set(v is None for v in values)) > 1:
        raise FlagError(f"--input_files_dir={directories}: mixes packed and unpacked records")
    return values[0] if values[0] is None else sum(values) / len(values)


def prepare_pretraining(
    config: PretrainingRunConfig, recipe, variant: PretrainingVariant = HABANA_BERT
) -> PreparedPretraining:
    """Check the flags, the model config and the records before anything is written."""
    if not (config.do_train or config.do_eval):
        raise FlagError("at least one of --do_train and --do_eval must be true")
    require_at_least_one(
        num_train_steps=config.num_train_steps or 0,
        max_seq_length=config.max_seq_length,
        max_predictions_per_seq=config.max_predictions_per_seq,
        eval_batch_size=config.eval_batch_size,
        max_eval_steps=config.max_eval_steps,
        display_loss_steps=config.display_loss_steps,
    )
    check_common(config)
    if config.dllog_path and not Path(config.dllog_path).resolve().parent.is_dir():
        raise FlagError(f"--dllog_path={config.dllog_path}: its directory does not exist")
    model_config = recipe.read_config(config.model_config_file)
    if config.max_seq_length > model_config.max_position_embeddings:
        raise FlagError(
            f"--max_seq_length={config.max_seq_length} exceeds the model's "
            f"max_position_embeddings={model_config.max_position_embeddings}"
        )
    inputs = variant.inputs(config)
    if config.resume and config.do_train:
        _check_resumable(config.init_checkpoint)
    for path in inputs.train_files:
        _check_record_widths(path, config, inputs.avg_seq_per_sample is not None)
    for path in inputs.eval_files:
        _check_record_widths(path, config, False)
    return PreparedPretraining(
        model_config, inputs, variant.optimizer(config), variant.rate_per_worker
    )


def derived_config(
    config: PretrainingRunConfig, prepared: PreparedPretraining, workers: int
) -> PretrainingRunConfig:
    """The settings the run trains with, derived once from the flags when the number of
    workers is known: the peak rate (Habana BERT multiplies it by the workers), the
    optimizer's decay, and the micro-batches an update (a packed row holds
    avg_seq_per_sample sequences: fewer micro-batches make the same number of sequences
    per update, as upstream divides the accumulation)."""
    rate = config.learning_rate * (workers if prepared.rate_per_worker else 1)
    steps = config.num_accumulation_steps
    packing = prepared.inputs.avg_seq_per_sample
    if packing is not None:
        steps = max(1, round(steps / packing))
        log.info("packed records, %.3f sequences a row: %d micro-batches an update", packing, steps)
    choice = prepared.optimizer
    log.info(
        "peak learning rate %g (%d worker(s)), %s schedule with power %g",
        rate, workers, choice.schedule, choice.lr_power,
    )  # fmt: skip
    return dataclasses.replace(
        config,
        learning_rate=rate,
        schedule=choice.schedule,
        lr_power=choice.lr_power,
        num_accumulation_steps=steps,
    )


def _check_resumable(prefix: str) -> None:
    """--resume continues the optimizer too: the checkpoint must hold its state, as a
    training run's ``model.ckpt-N`` does and a released ``bert_model.ckpt`` does not."""
    import tensorflow as tf

    try:
        names = set(tf.train.load_checkpoint(prefix).get_variable_to_shape_map())
    except (tf.errors.OpError, ValueError):
        raise UserError(f"--init_checkpoint={prefix}: cannot read it") from None
    if "global_step" not in names or not any(n.endswith("/adam_m") for n in names):
        raise FlagError(
            f"--resume: {prefix} holds no optimizer state (global_step, adam_m, adam_v); "
            "warm-start from it without --resume"
        )


def _check_record_widths(path: str, config: PretrainingRunConfig, packed: bool) -> None:
    """The first record of a file must have the lengths the flags say (packed rows carry
    3 more prediction slots, one per packed sequence)."""
    widths = [("input_ids", "max_seq_length", config.max_seq_length)]
    required = ()
    if config.masked_lm_budget > 0:  # the masks are made as records are read
        required = (
            "token_boundary",
            "--masked_lm_budget masks from token_boundary, which these records lack "
            "(ALBERT's create_pretraining_data.py writes it)",
        )
    else:
        predictions = config.max_predictions_per_seq + (3 if packed else 0)
        widths.append(("masked_lm_positions", "max_predictions_per_seq", predictions))
    check_record_widths(path, widths, required)


def check_record_widths(path: str, widths, required=()) -> None:
    """The first record of `path` is a pre-training record whose features have the
    widths the flags give: `widths` is (feature, flag, expected) triples; `required`, if
    given, a (feature, why it is needed) pair."""
    import tensorflow as tf

    try:
        record = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as error:
        raise UserError(f"{path}: not a TFRecord file ({error.message})") from None
    if record is None:
        raise UserError(f"{path}: no records")
    from google.protobuf.message import DecodeError

    try:
        features = tf.train.Example.FromString(record.numpy()).features.feature
    except DecodeError as error:  # intact framing around damaged bytes
        raise UserError(f"{path}: the first record is not a tf.train.Example ({error})") from None
    if required and required[0] not in features:
        raise UserError(f"{path}: {required[1]}")
    for name, flag, expected in widths:
        if name not in features:
            raise UserError(f"{path}: not a pre-training record (no {name})")
        found = len(features[name].int64_list.value)
        if found != expected:
            raise UserError(
                f"{path}: records have {name} of length {found} but --{flag}={expected}; "
                "give the flag the data was made with"
            )


class _TrainLog:
    """What the training loop logs, to the RunLog and, every --display_loss_steps, to
    DLLogger under upstream's names."""

    def __init__(self, run_log, dllog: DlLogger, every: int):
        self.run_log, self.dllog, self.every = run_log, dllog, every
        self._losses: List[float] = []

    def log(self, step: int, **scalars) -> dict:
        record = self.run_log.log(step, **scalars)
        self._losses.append(scalars["loss"])
        if self.dllog.enabled and step % self.every == 0:
            self.dllog.log(
                step,
                {
                    "throughput_train": scalars["sequences_per_second"],
                    "mlm_loss": scalars["mlm_loss"],
                    "nsp_loss": scalars["nsp_loss"],
                    "total_loss": scalars["loss"],
                    "avg_loss_step": sum(self._losses) / len(self._losses),
                    "learning_rate": scalars["learning_rate"],
                },
            )
            self._losses = []
        return record


def run_pretraining(config: PretrainingRunConfig, prepared: PreparedPretraining, recipe) -> dict:
    from bertfam.runlog import RunLog
    from bertfam.tf.checkpoint import variables_by_name
    from bertfam.tf.flow import own_rows, plot_training, ready_trainer, start_run, starting_weights
    from bertfam.tf.losses import eval_sums, pretraining_losses
    from bertfam.tf.pretraining_records import masking_records, pretraining_dataset

    run = start_run(config, prepared.model_config)
    workers = run.workers
    config = derived_config(config, prepared, workers.size)
    spec = per_record = None
    masking = record_masking(config, run.model_config.vocab_size)
    if masking is not None:
        spec, per_record = masking_records(masking, config.max_seq_length)
    if prepared.inputs.avg_seq_per_sample is not None:
        from bertfam.tf.packed_records import packed_feature_spec

        spec = packed_feature_spec(config.max_seq_length, config.max_predictions_per_seq)
    model = recipe.pretraining_model(run.model_config, run.precision)
    variables = variables_by_name(model)
    start = starting_weights(config, variables, (), recipe.checkpoint_table)

    def logits(batch, training):
        packed = {k: batch[k] for k in ("positions", "next_sentence_positions") if k in batch}
        return model(
            batch["input_ids"],
            batch["input_mask"],
            batch["segment_ids"],
            batch["masked_lm_positions"],
            training=training,
            **packed,
        )

    sentence_loss = "sop_loss" if config.sentence_task == "sentence_order" else "nsp_loss"

    def loss_fn(batch, training):
        share = update_share(batch, config.num_accumulation_steps, workers.size)
        losses = pretraining_losses(*logits(batch, training), batch, share)
        return losses["total_loss"], {
            "mlm_loss": losses["mlm_loss"],
            sentence_loss: losses["nsp_loss"],
        }

    results: dict = {}
    dllog = DlLogger(config.dllog_path, workers.is_main_process and bool(config.dllog_path))
    with RunLog(run.output_dir, enabled=workers.is_main_process) as run_log:
        step = 0
        if config.do_train:
            trainer = ready_trainer(
                config,
                run,
                variables,
                loss_fn,
                int(config.num_train_steps),
                start,
                prepared.optimizer.factory,
                continue_from=config.init_checkpoint if config.resume else None,
            )
            dataset = pretraining_dataset(
                prepared.inputs.train_files,
                config.train_batch_size * workers.size,
                config.max_seq_length,
                config.max_predictions_per_seq,
                is_training=True,
                spec=spec,
                per_record=per_record,
            )
            dataset = with_update_counts(dataset, config.num_accumulation_steps)
            dataset = own_rows(dataset, config.train_batch_size, workers)
            trainer.train(dataset, _TrainLog(run_log, dllog, config.display_loss_steps))
            step = int(trainer.step)
        elif start is not None:
            start.assign(variables)
            step = start.step
        if config.do_eval and workers.is_main_process:
            masking = record_masking(config, run.model_config.vocab_size)
            eval_records = masking_records(masking, config.max_seq_length) if masking else None
            results = _evaluate(
                config, prepared.inputs.eval_files, logits, eval_sums, step, eval_records
            )
            text = "".join(f"{key} = {results[key]}\n" for key in sorted(results))
            from bertfam.atomic import write_text

            write_text(run.output_dir / EVAL_RESULTS_FILE, text)
            log.info("***** Eval results *****\n%s", text)
            run_log.log(step, **{k: v for k, v in results.items() if k != "global_step"})
            dllog.log(step, {k: v for k, v in results.items() if k != "global_step"})
    if workers.is_main_process and config.do_train:
        plot_training(run.output_dir)
    return results


def with_update_counts(global_batches, micro_batches: int):
    """Each (global) micro-batch with ``masked_lm_count``: the mean number of real masked
    predictions per micro-batch of the update it belongs to (see `update_share`)."""
    import tensorflow as tf

    def attach(group):
        real = tf.cast(tf.cast(group["masked_lm_weights"], tf.float32) > 0, tf.float32)
        mean = tf.reduce_sum(real) / micro_batches
        return {**group, "masked_lm_count": tf.fill([micro_batches], mean)}

    return global_batches.batch(micro_batches).map(attach).unbatch()


def update_share(batch, micro_batches: int, workers: int):
    """The denominator that makes a part's masked-LM loss its share of Google's loss of
    the whole update: the update averages the parts (over micro-batches and workers), so
    each divides by the update's count of predictions (+ 1e-5) over the number of parts.
    Then N workers and K micro-batches train exactly as one batch of N * K times the size."""
    if "masked_lm_count" not in batch:
        return None
    return (batch["masked_lm_count"] + 1e-5 / micro_batches) / workers


def _evaluate(config, files, logits, eval_sums, step: int, records=None) -> Dict[str, float]:
    """Google's eval metrics over --max_eval_steps batches (fewer when the files end);
    `records`: (spec, per_record) when the masks are made as records are read."""
    import tensorflow as tf

    from bertfam.tf.losses import pretraining_losses
    from bertfam.tf.pretraining_records import pretraining_dataset

    spec, per_record = records or (None, None)
    dataset = pretraining_dataset(
        files,
        config.eval_batch_size,
        config.max_seq_length,
        config.max_predictions_per_seq,
        is_training=False,
        spec=spec,
        per_record=per_record,
    )

    @tf.function(autograph=False)
    def batch_sums(batch):
        mlm, nsp = logits(batch, training=False)
        return eval_sums(mlm, nsp, batch), pretraining_losses(mlm, nsp, batch)["total_loss"]

    totals: Dict[str, float] = {}
    losses: List[float] = []
    for batch in dataset.take(config.max_eval_steps):
        sums, loss = batch_sums(batch)
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + float(value)
        losses.append(float(loss))
    if not losses:
        raise UserError("the evaluation files hold no batch")
    mlm_weight, nsp_weight = totals["masked_lm_weight"], totals["next_sentence_weight"]
    task = config.sentence_task  # ALBERT's keys: sentence_order_accuracy, ..._loss
    return {
        "global_step": step,
        "loss": sum(losses) / len(losses),  # the Estimator's mean of batch losses
        "masked_lm_accuracy": totals["masked_lm_accuracy"] / mlm_weight,
        "masked_lm_loss": totals["masked_lm_loss"] / mlm_weight,
        f"{task}_accuracy": totals["next_sentence_accuracy"] / nsp_weight,
        f"{task}_loss": totals["next_sentence_loss"] / nsp_weight,
    }
