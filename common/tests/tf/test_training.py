"""bertfam.tf.training.Trainer: the loss function's (loss, metrics), the optimizer factory,
and accumulation, checked against NumPy on a linear model small enough to do by hand."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed (bertfam.tf needs it)")

from bertfam.runlog import RunLog, read_metrics  # noqa: E402
from bertfam.tf.optimization import AdamWeightDecay, Lamb, lamb  # noqa: E402
from bertfam.tf.run_config import RunConfig  # noqa: E402
from bertfam.tf.training import Trainer  # noqa: E402

X = np.arange(24, dtype=np.float32).reshape(8, 3) / 10.0
Y = (X @ np.array([1.0, -2.0, 0.5], dtype=np.float32))[:, np.newaxis]
W0 = np.full((3, 1), 0.1, dtype=np.float32)


def config(tmp_path, **overrides):
    settings = dict(
        model_config_file="",
        vocab_file="",
        output_dir=str(tmp_path),
        learning_rate=0.01,
        warmup_proportion=0.0,
        train_batch_size=2,
        save_checkpoints_steps=1000,
    )
    return RunConfig(**{**settings, **overrides})


def linear(variables):
    def loss_fn(batch, training):
        error = tf.matmul(batch["x"], variables["dense/kernel"]) - batch["y"]
        return tf.reduce_mean(tf.square(error)), {"mae": tf.reduce_mean(tf.abs(error))}

    return loss_fn


def batches():
    return tf.data.Dataset.from_tensor_slices({"x": X, "y": Y}).batch(2).repeat()


@pytest.mark.parametrize("accumulation", [1, 2])
def test_metrics_are_logged_beside_the_loss_averaged_over_micro_batches(tmp_path, accumulation):
    variables = {"dense/kernel": tf.Variable(W0)}
    run = config(tmp_path, num_accumulation_steps=accumulation)
    trainer = Trainer(linear(variables), variables, run, total_steps=1)
    with RunLog(tmp_path, tensorboard=False) as run_log:
        trainer.train(batches(), run_log)
    (record,) = read_metrics(tmp_path / "metrics.jsonl")
    # The first update sees the first `accumulation` micro-batches, all at the weights W0.
    rows = slice(0, 2 * accumulation)
    errors = (X[rows] @ W0 - Y[rows]).reshape(accumulation, 2)
    assert record["step"] == 1
    assert record["loss"] == pytest.approx(np.mean(np.square(errors), axis=1).mean(), rel=1e-6)
    assert record["mae"] == pytest.approx(np.mean(np.abs(errors), axis=1).mean(), rel=1e-6)


def test_the_optimizer_factory_builds_the_optimizer_and_its_update_is_applied(tmp_path):
    variables = {"dense/kernel": tf.Variable(W0)}
    trainer = Trainer(linear(variables), variables, config(tmp_path), 1, optimizer=lamb)
    assert isinstance(trainer.optimizer, Lamb)
    trainer.take_training_step(iter(batches()))

    # The same update from the optimizer alone, on the gradient of the first batch.
    reference = {"dense/kernel": tf.Variable(W0)}
    with tf.GradientTape() as tape:
        loss, _ = linear(reference)({"x": X[:2], "y": Y[:2]}, training=True)
    (grad,) = tape.gradient(loss, list(reference.values()))
    rate = 0.01  # no warm-up: the first update runs at the peak
    lamb(reference, config(tmp_path)).apply({"dense/kernel": grad}, rate)
    np.testing.assert_allclose(
        variables["dense/kernel"].numpy(), reference["dense/kernel"].numpy(), rtol=1e-6
    )
    assert isinstance(
        Trainer(linear(variables), variables, config(tmp_path), 1).optimizer, AdamWeightDecay
    )


def test_a_record_damaged_mid_file_stops_the_run_with_one_error(tmp_path):
    from bertfam.tf.training import DamagedDataError

    path = tmp_path / "data.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for x, y in zip(X, Y):
            features = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=x)),
                        "y": tf.train.Feature(float_list=tf.train.FloatList(value=y))}  # fmt: skip
            writer.write(tf.train.Example(features=tf.train.Features(feature=features))
                         .SerializeToString())  # fmt: skip
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte half-way: a CRC mismatch there
    path.write_bytes(bytes(data))
    spec = {
        "x": tf.io.FixedLenFeature([3], tf.float32),
        "y": tf.io.FixedLenFeature([1], tf.float32),
    }
    records = tf.data.TFRecordDataset(str(path)).map(lambda r: tf.io.parse_single_example(r, spec))
    variables = {"dense/kernel": tf.Variable(W0)}
    trainer = Trainer(linear(variables), variables, config(tmp_path), total_steps=4)
    damaged = pytest.raises(DamagedDataError, match="a training record cannot be read")
    with RunLog(tmp_path, tensorboard=False) as run_log, damaged:
        trainer.train(records.batch(2).repeat(), run_log)
    assert 1 <= int(trainer.step) < 4  # the updates before the damage were made
