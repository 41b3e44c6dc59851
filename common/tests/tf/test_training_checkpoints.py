"""Training checkpoints in Google's name-based layout (bertfam.tf.training_checkpoints)."""

import numpy as np
import pytest
import tensorflow as tf

from bertfam.checkpoints import CheckpointError
from bertfam.tf.optimization import Lamb
from bertfam.tf.training_checkpoints import TrainingCheckpoints

SHAPES = {"bert/pooler/dense/kernel": (3, 3), "cls/predictions/output_bias": (5,)}


def model_and_optimizer(seed=0):
    rng = np.random.default_rng(seed)
    variables = {
        name: tf.Variable(rng.normal(size=shape).astype(np.float32), name=name)
        for name, shape in SHAPES.items()
    }
    optimizer = Lamb(variables)
    return variables, optimizer


def train_once(variables, optimizer, seed):
    rng = np.random.default_rng(seed)
    grads = {n: rng.normal(size=v.shape).astype(np.float32) for n, v in variables.items()}
    optimizer.apply(grads, 0.1)


def test_checkpoints_hold_googles_names_and_nothing_else(tmp_path):
    variables, optimizer = model_and_optimizer()
    train_once(variables, optimizer, 1)
    checkpoints = TrainingCheckpoints(tmp_path, {**variables, **optimizer.state}, 2)
    prefix = checkpoints.save(1)

    assert prefix == f"{tmp_path}/model.ckpt-1"
    stored = dict(tf.train.list_variables(prefix))
    expected = {"global_step": []}
    for name, shape in SHAPES.items():
        expected.update({name: list(shape), f"{name}/adam_m": list(shape)})
        expected[f"{name}/adam_v"] = list(shape)
    assert stored == expected
    reader = tf.train.load_checkpoint(prefix)
    assert reader.get_tensor("global_step") == 1
    for name, variable in variables.items():
        np.testing.assert_array_equal(reader.get_tensor(name), variable.numpy())


def test_keeps_the_newest_and_the_state_file_names_them_relative_to_the_directory(tmp_path):
    variables, optimizer = model_and_optimizer()
    checkpoints = TrainingCheckpoints(tmp_path, {**variables, **optimizer.state}, 2)
    for step in (1, 2, 3):
        train_once(variables, optimizer, step)
        checkpoints.save(step)
        listed = tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths
        assert all(tf.io.gfile.exists(f"{path}.index") for path in listed)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint",
        "model.ckpt-2.data-00000-of-00001",
        "model.ckpt-2.index",
        "model.ckpt-3.data-00000-of-00001",
        "model.ckpt-3.index",
    ]
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "model.ckpt-3"\n'
        'all_model_checkpoint_paths: "model.ckpt-2"\n'
        'all_model_checkpoint_paths: "model.ckpt-3"\n'
    )
    assert checkpoints.latest == f"{tmp_path}/model.ckpt-3"


def test_a_resumed_run_restores_everything_and_goes_on_pruning_its_checkpoints(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a relative --output_dir, as users type it
    variables, optimizer = model_and_optimizer()
    first = TrainingCheckpoints("out", {**variables, **optimizer.state}, 2)
    for step in (1, 2):
        train_once(variables, optimizer, step)
        first.save(step)
    train_once(variables, optimizer, 3)  # an update whose checkpoint was never written

    fresh, fresh_optimizer = model_and_optimizer(seed=9)
    second = TrainingCheckpoints("out", {**fresh, **fresh_optimizer.state}, 2)
    second.restore(second.latest)
    assert int(fresh_optimizer.iterations) == 2
    # LAMB's bias correction continues at t = 3: the same update as the first run's third.
    train_once(fresh, fresh_optimizer, 3)
    for name in SHAPES:
        np.testing.assert_array_equal(fresh[name].numpy(), variables[name].numpy())
        np.testing.assert_array_equal(
            fresh_optimizer.adam_v[name].numpy(), optimizer.adam_v[name].numpy()
        )
    second.save(3)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.index")) == [
        "model.ckpt-2.index",
        "model.ckpt-3.index",
    ]


def test_restoring_a_checkpoint_that_does_not_fit_names_every_problem(tmp_path):
    variables, optimizer = model_and_optimizer()
    prefix = TrainingCheckpoints(tmp_path / "a", variables, 2).save(1)  # no optimizer state
    other = {"bert/pooler/dense/kernel": tf.Variable(tf.zeros([4, 4]))}
    with pytest.raises(CheckpointError) as error:
        TrainingCheckpoints(tmp_path / "b", {**other, **optimizer.state}, 2).restore(prefix)
    message = str(error.value)
    assert "cannot continue this run" in message and "\n" not in message
    assert "variables missing" in message and "global_step" in message
    assert "bert/pooler/dense/kernel (3, 3) (the run's is (4, 4))" in message
    with pytest.raises(CheckpointError, match="cannot read it"):
        TrainingCheckpoints(tmp_path, variables, 2).restore(str(tmp_path / "nothing"))


def test_a_damaged_newest_checkpoint_is_passed_over_in_one_line(tmp_path, caplog):
    variables, optimizer = model_and_optimizer()
    checkpoints = TrainingCheckpoints(tmp_path, {**variables, **optimizer.state}, 3)
    train_once(variables, optimizer, 1)
    checkpoints.save(1)
    at_step_1 = {name: v.numpy() for name, v in variables.items()}
    train_once(variables, optimizer, 2)
    checkpoints.save(2)
    data = tmp_path / "model.ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])  # cut short, as by a full disk

    fresh, fresh_optimizer = model_and_optimizer(seed=9)
    resumed = TrainingCheckpoints(tmp_path, {**fresh, **fresh_optimizer.state}, 3)
    with caplog.at_level("WARNING"):
        assert resumed.restore_newest() == str(tmp_path / "model.ckpt-1")
    assert int(fresh_optimizer.iterations) == 1  # step 1's state, not a fresh start
    for name, value in at_step_1.items():
        np.testing.assert_array_equal(fresh[name].numpy(), value)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "model.ckpt-2: cannot read" in warnings[0]
    assert warnings[0].endswith(f"resuming from the previous one, {tmp_path}/model.ckpt-1")

    (tmp_path / "model.ckpt-1.index").write_bytes(b"not an index")
    with pytest.raises(CheckpointError, match="no readable checkpoint to resume from"):
        resumed.restore_newest()
