"""Each checkpoint layout against the names the upstream programs write and read, spelled
out here rather than taken from the layouts themselves."""

import pytest

from bertfam.checkpoint_names import (
    ELECTRA_PHASE1,
    ELECTRA_PHASE2,
    TF_BEST,
    TF_MODEL,
    TORCH_FINETUNING,
    TORCH_PRETRAINING,
    has_tf_state,
    tf_state_latest,
    tf_state_text,
)


def touch(folder, *names):
    for name in names:
        (folder / name).write_bytes(b"")


def test_tf_model_checkpoints_are_estimator_prefixes(tmp_path):
    # An Estimator's model_dir: the state file, numbered prefixes, an events file, and
    # ALBERT's best copy, which is no step's.
    touch(tmp_path, "checkpoint", "graph.pbtxt", "events.out.tfevents.1.host",
          "model.ckpt-2.index", "model.ckpt-2.data-00000-of-00001",
          "model.ckpt-10.index", "model.ckpt-10.data-00000-of-00001",
          "model.ckpt-12.data-00000-of-00001",  # cut short: no .index yet
          "model.ckpt-best.index", "model.ckpt-best.data-00000-of-00001")  # fmt: skip
    assert TF_MODEL.name(500) == "model.ckpt-500"
    assert TF_MODEL.in_folder(tmp_path) == {
        2: tmp_path / "model.ckpt-2",
        10: tmp_path / "model.ckpt-10",
    }
    assert TF_MODEL.newest(tmp_path) == tmp_path / "model.ckpt-10"
    assert TF_MODEL.step("/out/model.ckpt-10") == 10 and TF_MODEL.step(TF_BEST) is None
    TF_MODEL.delete(tmp_path / "model.ckpt-2")  # leaves model.ckpt-2x and the best alone
    assert sorted(p.name for p in tmp_path.glob("model.ckpt-*")) == [
        "model.ckpt-10.data-00000-of-00001", "model.ckpt-10.index",
        "model.ckpt-12.data-00000-of-00001",
        "model.ckpt-best.data-00000-of-00001", "model.ckpt-best.index",
    ]  # fmt: skip


def test_electras_phases_are_told_apart(tmp_path):
    touch(tmp_path, "ckpt-6.index", "ckpt-p2-4.index", "ckpt-p2-2.index")
    assert ELECTRA_PHASE1.in_folder(tmp_path) == {6: tmp_path / "ckpt-6"}
    assert list(ELECTRA_PHASE2.in_folder(tmp_path)) == [2, 4]
    assert ELECTRA_PHASE2.step("results/models/base/checkpoints/ckpt-p2-4") == 4
    assert ELECTRA_PHASE2.step("ckpt-6") is None and ELECTRA_PHASE1.step("ckpt-p2-4") is None


def test_torch_pretraining_checkpoints_are_nvidias_names(tmp_path):
    touch(tmp_path, "ckpt_8601.pt", "ckpt_7038.pt", "ckpt_x.pt", "ckpt_5.pt.tmp", "dllogger.json")
    assert TORCH_PRETRAINING.name(8601) == "ckpt_8601.pt"
    assert list(TORCH_PRETRAINING.in_folder(tmp_path)) == [7038, 8601]
    TORCH_PRETRAINING.delete(tmp_path / "ckpt_7038.pt")
    assert TORCH_PRETRAINING.in_folder(tmp_path) == {8601: tmp_path / "ckpt_8601.pt"}


def test_torch_finetuning_checkpoints_are_huggingfaces_folders(tmp_path):
    for name in ("checkpoint-500", "checkpoint-1000", "checkpoint-best"):
        (tmp_path / name).mkdir()
    touch(tmp_path, "checkpoint-7")  # a file, not a checkpoint folder
    assert list(TORCH_FINETUNING.in_folder(tmp_path)) == [500, 1000]
    (tmp_path / "checkpoint-500" / "pytorch_model.bin").write_bytes(b"")
    TORCH_FINETUNING.delete(tmp_path / "checkpoint-500")
    assert list(TORCH_FINETUNING.in_folder(tmp_path)) == [1000]


def test_the_state_file_is_the_one_tensorflow_reads_and_writes(tmp_path):
    tf = pytest.importorskip("tensorflow")
    assert not has_tf_state(tmp_path) and tf_state_latest(tmp_path) is None
    (tmp_path / "checkpoint").write_text(
        tf_state_text("model.ckpt-4", ["model.ckpt-2", "model.ckpt-4"])
    )
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == str(tmp_path / "model.ckpt-4")
    assert list(state.all_model_checkpoint_paths) == [
        str(tmp_path / p) for p in ("model.ckpt-2", "model.ckpt-4")
    ]
    # And one TensorFlow wrote is read back without it.
    other = tmp_path / "managed"
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(v=tf.Variable(1.0)), str(other), 2, checkpoint_name="ckpt"
    )
    manager.save(checkpoint_number=6)
    assert has_tf_state(other) and tf_state_latest(other) == str(other / "ckpt-6")
    assert ELECTRA_PHASE1.in_folder(other) == {6: other / "ckpt-6"}
