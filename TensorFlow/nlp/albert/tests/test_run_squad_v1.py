"""run_squad_v1.py end to end with the seed README's command line, on a tiny release.

The release is tests/albert_fixtures.py's (random weights, a 100-piece SentencePiece
model); the data is a generated SQuAD v1.1 file. Flag names are the seed's, values
shrunk so a run takes seconds.
"""

import json
import re
import signal

import numpy as np
import pytest
from albert_fixtures import one_line_error, run, run_signalling_rank_1, tiny_release

from bertfam import tinydata
from bertfam.squad.evaluate import evaluate_v1
from bertfam.testing import assert_preempted, assert_same_checkpoint_weights, horovod_mpirun


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return tiny_release(tmp_path_factory.mktemp("albert") / "albert_large_v1")


@pytest.fixture(scope="module")
def squad(tmp_path_factory):
    return tinydata.squad_file(tmp_path_factory.mktemp("squad") / "train-v1.1.json", questions=32)


def seed_flags(release, squad, output_dir, **overrides):
    """The seed's 1-card line, with tiny-data values."""
    values = {
        "train_feature_file": output_dir / "train_feature_file.tf_record",
        "predict_feature_file": output_dir / "predict_feature_file.tf_record",
        "predict_feature_left_file": output_dir / "predict_feature_left_file.tf_record",
        "spm_model_file": release / "30k-clean.model",
        "vocab_file": release / "30k-clean.vocab",
        "albert_config_file": release / "albert_config.json",
        "init_checkpoint": release / "model.ckpt-best",
        "do_train": "True",
        "train_file": squad,
        "do_predict": "True",
        "predict_file": squad,
        "train_batch_size": 4,
        "learning_rate": "3e-04",
        "num_train_epochs": 2,
        "max_seq_length": 48,
        "doc_stride": 16,
        "output_dir": output_dir,
        "use_horovod": "false",
        "enable_scoped_allocator": "False",
        "save_checkpoints_steps": 5,
        # Not in the seed: its 64-token questions do not fit 48-token windows.
        "max_query_length": 12,
    }
    values.update(overrides)
    return ["run_squad_v1.py"] + [f"--{key}={value}" for key, value in values.items()]


def blocks(eval_results: str):
    """eval_results.txt as upstream writes it: per checkpoint, then the final block."""
    *evaluated, final = eval_results.split("=" * 50 + "\n")
    return evaluated, final


def scores_in(block: str) -> dict:
    return {k: float(v) for k, v in re.findall(r"^(exact_match|f1) = (\S+)$", block, re.M)}


@pytest.fixture(scope="module")
def trained(release, squad, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run")
    result = run(seed_flags(release, squad, output_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result


def test_the_seed_line_trains_evaluates_every_checkpoint_and_keeps_the_best(trained, squad):
    output_dir, _ = trained
    text = (output_dir / "eval_results.txt").read_text()
    evaluated, final = blocks(text)
    # 32 examples at batch 4 for 2 epochs: 16 updates, a checkpoint every 5 and the last.
    assert len(evaluated) == 4
    best_f1, best_index = -1.0, None
    for index, block in enumerate(evaluated):
        f1 = scores_in(block)["f1"]
        if f1 > best_f1:
            best_f1, best_index = f1, index
            assert re.search(r"^saved \S+model\.ckpt-\d+\.index to \S+model\.ckpt-best\.index$",
                             block, re.M)  # fmt: skip
        else:
            assert "saved" not in block
        assert re.search(rf"^best f1 = {re.escape(str(best_f1))}$", block, re.M)
    steps = [5, 10, 15, 16]
    assert final.endswith(f"best perf happened at step: {steps[best_index]}")
    assert scores_in(final) == scores_in(evaluated[best_index])
    # The final predictions are the best checkpoint's, scored by the official script.
    predictions = json.loads((output_dir / "predictions.json").read_text())
    dataset = json.loads(squad.read_text())["data"]
    assert evaluate_v1(dataset, predictions) == scores_in(final)
    # Kept: the best, and the newest (a rerun resumes from it); the others are removed.
    left = sorted(p.name for p in output_dir.glob("model.ckpt-*.index"))
    assert left == sorted({"model.ckpt-best.index", "model.ckpt-16.index"})


def test_nbest_entries_are_albert_log_probabilities(trained):
    output_dir, _ = trained
    nbest = json.loads((output_dir / "nbest_predictions.json").read_text())
    assert len(nbest) == 32
    for entries in nbest.values():
        assert all(
            set(e) == {"text", "probability", "start_log_prob", "end_log_prob"} for e in entries
        )
        assert all(e["start_log_prob"] <= 0 and e["end_log_prob"] <= 0 for e in entries)
        totals = [e["start_log_prob"] + e["end_log_prob"] for e in entries]
        assert totals == sorted(totals, reverse=True)
        assert sum(e["probability"] for e in entries) == pytest.approx(1.0)


def test_feature_files_are_written_and_reused_or_rebuilt(trained, release, squad, tmp_path):
    output_dir, first = trained
    holds = {  # each file's arrays, as squad_v1 splits them
        "train_feature_file": {"input_ids", "start_positions", "end_positions"},
        "predict_feature_file": {"unique_ids", "input_ids", "input_mask", "segment_ids"},
        "predict_feature_left_file": {"example_index", "token_offsets", "token_is_max_context"},
    }
    for name, arrays in holds.items():
        with np.load(output_dir / f"{name}.tf_record") as stored:
            assert {"fingerprint", *arrays} <= set(stored.files), name
    assert "Reusing" not in first.stderr
    # Predicting again from the same run's best checkpoint: the features are read back.
    again_dir = tmp_path / "again"
    again = run(seed_flags(release, squad, again_dir, do_train="False",
                           init_checkpoint=output_dir / "model.ckpt-best",
                           predict_feature_file=output_dir / "predict_feature_file.tf_record",
                           predict_feature_left_file=output_dir / "predict_feature_left_file.tf_record"))  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Reusing the features" in again.stderr
    assert json.loads((again_dir / "predictions.json").read_text()) == json.loads(
        (output_dir / "predictions.json").read_text()
    )
    # Other settings: the same files are rebuilt, and say so.
    other = run(seed_flags(release, squad, tmp_path / "other", do_train="False", doc_stride=24,
                           init_checkpoint=output_dir / "model.ckpt-best",
                           predict_feature_file=again_dir / "p.tf_record",
                           predict_feature_left_file=again_dir / "l.tf_record"))  # fmt: skip
    assert other.returncode == 0, other.stderr[-3000:]
    rebuilt = run(seed_flags(release, squad, tmp_path / "rebuilt", do_train="False",
                             init_checkpoint=output_dir / "model.ckpt-best",
                             predict_feature_file=again_dir / "p.tf_record",
                             predict_feature_left_file=again_dir / "l.tf_record"))  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert "written for other inputs or settings; rebuilding" in rebuilt.stderr


def test_bad_input_is_one_line_and_nothing_is_written(release, squad, tmp_path):
    bad_vocab = tmp_path / "other.vocab"
    lines = (release / "30k-clean.vocab").read_text().splitlines()
    bad_vocab.write_text("\n".join(lines[:10] + [lines[11], lines[10]] + lines[12:]) + "\n")
    config = json.loads((release / "albert_config.json").read_text())
    wrong_size = tmp_path / "albert_config.json"
    wrong_size.write_text(json.dumps(dict(config, vocab_size=30000)))
    not_features = tmp_path / "notes.txt"
    not_features.write_text("my notes\n")
    cases = [
        ({"vocab_file": bad_vocab}, "does not match --spm_model_file", "differ from piece 10"),
        ({"albert_config_file": wrong_size}, "vocab_size=30000"),
        ({"albert_hub_module_handle": "https://tfhub.dev/google/albert_base/3"}, "TF-Hub"),
        ({"do_eval": "True"}, "always scores its predictions"),
        ({"predict_feature_left_file": ""}, "--predict_feature_left_file"),
        ({"input_file": tmp_path}, "--train_feature_file"),
    ]
    for overrides, *fragments in cases:
        out = tmp_path / "out"
        one_line_error(run(seed_flags(release, squad, out, **overrides)), *fragments)
        assert not out.exists()
    out = tmp_path / "features_elsewhere"
    result = run(seed_flags(release, squad, out, train_feature_file=not_features))
    one_line_error(result, "is not a feature file of this script")
    assert not_features.read_text() == "my notes\n"


def test_a_bert_checkpoint_is_named_as_such(release, squad, tmp_path):
    import tensorflow as tf

    from bertfam.tf.checkpoint import save_name_based_checkpoint

    weights = {
        "bert/embeddings/word_embeddings": tf.zeros([100, 32]).numpy(),
        "bert/encoder/layer_0/attention/self/query/kernel": tf.zeros([32, 32]).numpy(),
    }
    bert = save_name_based_checkpoint(tmp_path / "bert_model.ckpt", weights)
    out = tmp_path / "out"
    result = run(seed_flags(release, squad, out, init_checkpoint=bert))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # Found once TensorFlow reads the checkpoint, after its start-up log: the last line.
    last = result.stderr.strip().splitlines()[-1]
    assert "is a BERT checkpoint" in last and "bert/embeddings/word_embeddings" in last
    assert not out.exists() or not any(out.iterdir())


def test_resume_after_kill_then_sigterm_equals_an_uninterrupted_run(release, squad, tmp_path):
    def flags(output_dir):
        return seed_flags(release, squad, output_dir, deterministic_run="true",
                          do_predict="False", train_steps=8, save_checkpoints_steps=2)  # fmt: skip

    straight, out = tmp_path / "straight", tmp_path / "out"
    assert run(flags(straight)).returncode == 0
    crashed = run(["-m", "bertfam.testing.tf_crash_after_checkpoint", "4", *flags(out)])
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    # The resumed run is preempted after update 5 (between checkpoints), then goes on.
    preempted = run(["-m", "bertfam.testing.tf_signal_after_update", "5", *flags(out)])
    assert_preempted(preempted, "run_squad_v1.py", 5, out / "model.ckpt-5")
    assert "Resuming from" in preempted.stderr
    resumed = run(flags(out))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    assert_same_checkpoint_weights(
        out / "model.ckpt-8", straight / "model.ckpt-8", atol=1e-6, at_least=20
    )


def losses(output_dir):
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [record["loss"] for record in records if "loss" in record]


def test_seed_multi_card_line_under_mpirun_matches_one_process_also_after_a_sigterm_to_one(
    release, squad, tmp_path
):
    """The 8-card line on 2 workers at batch 2 trains as one process at batch 4, also when
    SIGTERM reaches rank 1 alone after update 10 and the same command resumes; rank 0
    alone evaluates, as one process does. (Update 10 is a checkpoint's: a signal between
    two would add a checkpoint, which the best-checkpoint search then scores too.)"""
    two, one = tmp_path / "two", tmp_path / "one"
    flags_two = seed_flags(release, squad, two, use_horovod="true", train_batch_size=2,
                           deterministic_run="true")  # fmt: skip
    stopped = run_signalling_rank_1(flags_two, 10)
    assert stopped.returncode != 0, stopped.stderr[-3000:]  # mpirun reports 143 its own way
    assert f"stopped by SIGTERM after update 10; checkpoint {two}/model.ckpt-10" in stopped.stderr
    distributed = run(flags_two, launcher=horovod_mpirun())
    assert distributed.returncode == 0, distributed.stderr[-3000:]
    assert "Resuming from" in distributed.stderr
    single = run(seed_flags(release, squad, one, deterministic_run="true"))
    assert single.returncode == 0, single.stderr[-3000:]
    assert len(losses(two)) == 16
    np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
    assert_same_checkpoint_weights(
        two / "model.ckpt-16", one / "model.ckpt-16", atol=1e-5, at_least=20
    )
    for name in ("predictions.json", "eval_results.txt"):
        assert (two / name).read_text().replace(str(two), "") == (one / name).read_text().replace(
            str(one), ""
        )
