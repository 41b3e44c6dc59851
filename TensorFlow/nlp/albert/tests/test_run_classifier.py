"""run_classifier.py end to end with google-research/albert's flags, on MRPC-format data
made here and a tiny release (tests/albert_fixtures.py)."""

import json
import re

import numpy as np
import pytest
from albert_fixtures import one_line_error, run, run_signalling_rank_1, tiny_release

from bertfam import tinydata
from bertfam.glue.metrics import accuracy
from bertfam.glue.readers import GLUE_PROCESSORS, get_processor
from bertfam.testing import assert_preempted, assert_same_checkpoint_weights, horovod_mpirun

RELEASE, MRPC = [], []  # the module's fixtures, for best_checkpoint_logits


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    RELEASE[:] = [tiny_release(tmp_path_factory.mktemp("albert") / "albert_base_v1")]
    return RELEASE[0]


def first_word_pairs(count, seed):
    """(label, a, b): "1" iff sentence a names one of the first four teams."""
    rows = []
    for _, a, b in tinydata.identity_pairs(count, seed):
        rows.append(("1" if a in tinydata.TEAMS[:4] else "0", f"{a} won", b))
    return rows


@pytest.fixture(scope="module")
def mrpc(tmp_path_factory):
    folder = tmp_path_factory.mktemp("glue") / "MRPC"
    MRPC[:] = [
        tinydata.write_mrpc(
            folder, first_word_pairs(64, 1), first_word_pairs(20, 2), first_word_pairs(12, 3)
        )
    ]
    return MRPC[0]


def flags(release, mrpc, output_dir, **overrides):
    values = {
        "task_name": "MRPC",
        "data_dir": mrpc.parent,  # the GLUE folder, as upstream's run_glue.sh passes it
        "albert_config_file": release / "albert_config.json",
        "spm_model_file": release / "30k-clean.model",
        "vocab_file": release / "30k-clean.vocab",
        "init_checkpoint": release / "model.ckpt-best",
        "do_train": "True",
        "do_eval": "True",
        "do_predict": "True",
        "max_seq_length": 32,
        "train_batch_size": 8,
        "deterministic_run": "true",
        "learning_rate": "5e-03",
        "train_step": 60,
        "warmup_step": 6,
        "save_checkpoints_steps": 20,
        "output_dir": output_dir,
    }
    values.update(overrides)
    return ["run_classifier.py"] + [f"--{key}={value}" for key, value in values.items()]


@pytest.fixture(scope="module")
def trained(release, mrpc, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("mrpc_run")
    result = run(flags(release, mrpc, output_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def best_checkpoint_logits(output_dir, split, task="mrpc", data_dir=None):
    """model.ckpt-best's logits on a split, computed here from the files alone."""
    import modeling
    import tensorflow as tf

    from bertfam.albert_config import AlbertConfig
    from bertfam.glue.features import convert_examples_to_features
    from bertfam.tf.checkpoint import assign_weights, read_init_checkpoint, variables_by_name
    from bertfam.tokenization.sentencepiece import SentencePieceTokenizer

    release = RELEASE[0]
    config = AlbertConfig.from_json_file(release / "albert_config.json").without_dropout()
    processor = get_processor(task, GLUE_PROCESSORS)
    label_list = processor.get_labels()
    model = modeling.AlbertForSequenceClassification(config, num_labels=len(label_list))
    variables = variables_by_name(model)
    weights, source = read_init_checkpoint(str(output_dir / "model.ckpt-best"))
    assign_weights(variables, {k: v for k, v in weights.items() if k in variables}, source)
    examples = getattr(processor, f"get_{split}_examples")(str(data_dir or MRPC[0]))
    tokenizer = SentencePieceTokenizer(release / "30k-clean.model")
    features = convert_examples_to_features(examples, label_list, 32, tokenizer)
    ids, mask, types = (tf.constant(a) for a in (features.input_ids, features.input_mask,
                                                 features.segment_ids))  # fmt: skip
    return model(ids, mask, types, training=False).numpy().astype(np.float64)


def evaluated_blocks(output_dir):
    blocks = (output_dir / "eval_results.txt").read_text().split("=" * 50 + "\n")
    assert blocks[-1] == ""
    return [dict(re.findall(r"^(\S+) = (\S+)$", block, re.M)) for block in blocks[:-1]]


def test_every_checkpoint_is_scored_and_the_best_kept(trained):
    blocks = evaluated_blocks(trained)
    assert [int(b["global_step"]) for b in blocks] == [20, 40, 60]
    assert all(set(b) == {"eval_accuracy", "eval_loss", "global_step", "loss", "best"}
               for b in blocks)  # fmt: skip
    accuracies = [float(b["eval_accuracy"]) for b in blocks]
    best_before = -1.0
    for block, value in zip(blocks, accuracies):
        assert float(block["best"]) == best_before  # upstream writes the best so far
        best_before = max(best_before, value)
    best_step = 20 * (1 + accuracies.index(max(accuracies)))
    assert (trained / "best_trial.txt").read_text() == f"60:{best_step}:{max(accuracies)}"
    left = sorted(p.name for p in trained.glob("model.ckpt-*.index"))
    assert left == ["model.ckpt-60.index", "model.ckpt-best.index"]
    # The best block's numbers are model.ckpt-best's, recomputed here.
    best = blocks[accuracies.index(max(accuracies))]
    logits = best_checkpoint_logits(trained, "dev")
    labels = np.array([int(label) for label, _, _ in first_word_pairs(20, 2)])
    losses = -log_softmax(logits)[np.arange(len(labels)), labels]
    assert float(best["eval_accuracy"]) == accuracy(logits.argmax(axis=1), labels)
    assert float(best["eval_loss"]) == pytest.approx(losses.mean(), rel=1e-6)
    batch_means = [losses[i : i + 8].mean() for i in range(0, len(losses), 8)]  # eval batch 8
    assert float(best["loss"]) == pytest.approx(np.mean(batch_means), rel=1e-6)


def test_predictions_are_the_best_checkpoints(trained, mrpc):
    probabilities = np.loadtxt(trained / "test_results.tsv", ndmin=2)
    assert probabilities.shape == (12, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    submitted = (trained / "submit_results.tsv").read_text().splitlines()
    assert submitted[0] == "index\tprediction"
    labels = [line.split("\t")[1] for line in submitted[1:]]
    ids = [line.split("\t")[0] for line in (mrpc / "test.tsv").read_text().splitlines()[1:]]
    assert [line.split("\t")[0] for line in submitted[1:]] == ids == [str(i) for i in range(12)]
    assert labels == [["0", "1"][i] for i in probabilities.argmax(axis=1)]
    expected = np.exp(log_softmax(best_checkpoint_logits(trained, "test")))
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_cached_features_are_reused_and_evaluation_resumes(trained, release, mrpc, tmp_path):
    for split in ("train", "eval"):
        with np.load(trained / f"mrpc_{split}.tf_record") as stored:
            assert {"fingerprint", "input_ids", "label_ids"} <= set(stored.files)
    # Evaluating again: no checkpoint after best_trial.txt's step is left to score, and
    # the record of the first run stays (upstream would empty eval_results.txt).
    before = {name: (trained / name).read_text() for name in ("eval_results.txt", "best_trial.txt")}
    again = run(flags(release, mrpc, trained, do_train="False", do_predict="False"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Reusing the features" in again.stderr
    assert {name: (trained / name).read_text() for name in before} == before


def test_sigterm_saves_the_update_and_the_rerun_ends_as_an_uninterrupted_run(
    release, mrpc, tmp_path
):
    def training(output_dir):
        return flags(release, mrpc, output_dir, do_eval="False", do_predict="False",
                     train_step=8, warmup_step=2, save_checkpoints_steps=4)  # fmt: skip

    straight, out = tmp_path / "straight", tmp_path / "out"
    assert run(training(straight)).returncode == 0
    preempted = run(["-m", "bertfam.testing.tf_signal_after_update", "5", *training(out)])
    assert_preempted(preempted, "run_classifier.py", 5, out / "model.ckpt-5")
    resumed = run(training(out))
    assert resumed.returncode == 0 and "Resuming from" in resumed.stderr, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(out / "model.ckpt-8", straight / "model.ckpt-8", atol=1e-6)

    # Two Horovod workers at half the batch, SIGTERM to rank 1 alone after update 5: both
    # stop there with one checkpoint; resumed, they end as the one process above.
    two = tmp_path / "two"
    script = training(two) + ["--train_batch_size=4", "--use_horovod=true"]
    stopped = run_signalling_rank_1(script, 5)
    assert stopped.returncode != 0  # mpirun reports the ranks' 143 its own way
    assert f"stopped by SIGTERM after update 5; checkpoint {two}/model.ckpt-5" in stopped.stderr
    resumed = run(script, launcher=horovod_mpirun())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(two / "model.ckpt-8", straight / "model.ckpt-8", atol=2e-5)


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"task_name": "stsb"}, "not one of cola, mnli, mismnli"),
        ({"optimizer": "sgd"}, "--optimizer=sgd: adamw or lamb"),
        ({"num_train_epochs": 3}, "trains --train_step updates"),
        ({"warmup_step": 80}, "0 <= warmup_step <= train_step"),
        ({"albert_hub_module_handle": "https://tfhub.dev/x"}, "TF-Hub"),
    ],
)
def test_bad_input_is_one_line(release, mrpc, tmp_path, overrides, fragment):
    out = tmp_path / "out"
    one_line_error(run(flags(release, mrpc, out, **overrides)), fragment)
    assert not out.exists()


def test_rte_runs_from_the_glue_folder_and_submits_its_labels(release, tmp_path):
    """Another of upstream's task names end to end: RTE's files, labels and ids."""
    folder = tmp_path / "glue" / "RTE"
    folder.mkdir(parents=True)
    labels = ["entailment", "not_entailment"]

    def rows(count, seed, labelled=True):
        header = "index\tsentence1\tsentence2" + ("\tlabel" if labelled else "")
        lines = [header]
        for i, (label, a, b) in enumerate(first_word_pairs(count, seed)):
            lines.append(f"{100 + i}\t{a}\t{b}" + (f"\t{labels[int(label)]}" if labelled else ""))
        return "\n".join(lines) + "\n"

    (folder / "train.tsv").write_text(rows(16, 4))
    (folder / "dev.tsv").write_text(rows(8, 5))
    (folder / "test.tsv").write_text(rows(6, 6, labelled=False))
    out = tmp_path / "out"
    result = run(flags(release, folder, out, task_name="RTE", data_dir=tmp_path / "glue",
                       train_step=4, warmup_step=1, save_checkpoints_steps=2))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert [int(b["global_step"]) for b in evaluated_blocks(out)] == [2, 4]
    submitted = [line.split("\t") for line in (out / "submit_results.tsv").read_text().splitlines()]
    assert submitted[0] == ["index", "prediction"]
    assert [row[0] for row in submitted[1:]] == [str(100 + i) for i in range(6)]
    assert {row[1] for row in submitted[1:]} <= set(labels)


def test_sts_b_is_a_regression_picked_by_pearson(release, tmp_path):
    """STS-B end to end: one output, the squared error, Pearson's r picks the best, and
    the submitted predictions are the best checkpoint's scores."""
    folder = tmp_path / "glue" / "STS-B"
    folder.mkdir(parents=True)
    columns = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"

    def rows(count, seed, scored=True):
        lines = [columns + ("\tscore" if scored else "")]
        for i, (label, a, b) in enumerate(first_word_pairs(count, seed)):
            score = f"\t{4.0 * int(label) + 0.25 * (i % 3)}" if scored else ""
            lines.append(f"{i}\tmain\tx\t2012\t{i}\tnone\tnone\t{a}\t{b}{score}")
        return "\n".join(lines) + "\n"

    (folder / "train.tsv").write_text(rows(16, 4))
    (folder / "dev.tsv").write_text(rows(10, 5))
    (folder / "test.tsv").write_text(rows(6, 6, scored=False))
    out = tmp_path / "out"
    result = run(flags(release, folder, out, task_name="STS-B", data_dir=tmp_path / "glue",
                       train_step=4, warmup_step=1, save_checkpoints_steps=2))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = evaluated_blocks(out)
    assert [set(b) for b in blocks] == [{"pearson", "MSE", "eval_loss", "global_step", "loss",
                                         "best"}] * 2  # fmt: skip
    best = max(blocks, key=lambda b: float(b["pearson"]))
    scores = best_checkpoint_logits(out, "dev", "sts-b", folder)[:, 0]
    truth = np.array([4.0 * int(label) + 0.25 * (i % 3)
                      for i, (label, _, _) in enumerate(first_word_pairs(10, 5))])  # fmt: skip
    # The tiny model's scores barely vary, so float32 differences between batchings (8
    # there, 10 here) show in r's fifth digit.
    assert float(best["pearson"]) == pytest.approx(np.corrcoef(scores, truth)[0, 1], abs=1e-3)
    assert float(best["MSE"]) == pytest.approx(np.mean((scores - truth) ** 2), rel=1e-5)
    submitted = [line.split("\t") for line in (out / "submit_results.tsv").read_text().splitlines()]
    expected = best_checkpoint_logits(out, "test", "sts-b", folder)[:, 0]
    np.testing.assert_allclose([float(row[1]) for row in submitted[1:]], expected, atol=1e-5)


def test_lamb_is_albert_lamb_not_adamw(release, mrpc, tmp_path):
    """--optimizer=lamb trains with another rule than AdamW, from the same start."""
    common = dict(train_step=3, warmup_step=0, save_checkpoints_steps=3, do_eval="False",
                  do_predict="False")  # fmt: skip
    for name in ("adamw", "lamb"):
        result = run(flags(release, mrpc, tmp_path / name, optimizer=name, **common))
        assert result.returncode == 0, result.stderr[-3000:]
    adamw, lamb = (
        np.array([json.loads(line)["loss"] for line in (tmp_path / name / "metrics.jsonl")
                  .read_text().splitlines() if "loss" in json.loads(line)])
        for name in ("adamw", "lamb")
    )  # fmt: skip
    assert adamw[0] == pytest.approx(lamb[0], rel=1e-6)  # the same first batch and weights
    assert not np.allclose(adamw[1:], lamb[1:], rtol=1e-4)  # then other updates


def test_a_damaged_best_trial_file_is_one_line(release, mrpc, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "best_trial.txt").write_text("not:a:record:here")
    result = run(flags(release, mrpc, out, do_train="False", do_predict="False"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "best_trial.txt: expected <global_step>:<best step>:<best value>" in last
