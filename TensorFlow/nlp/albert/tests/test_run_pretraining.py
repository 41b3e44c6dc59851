"""run_pretraining.py end to end on records create_pretraining_data.py's core makes from
sample_text.txt with a tiny release: eval_results.txt under ALBERT's keys equals what the
saved checkpoint computes, two Horovod workers at half the batch train as one process
(the rate is not multiplied by the workers), also when one is preempted, masks made on the fly from token_boundary,
and the bad inputs."""

import numpy as np
import pytest
from albert_fixtures import one_line_error, run, run_signalling_rank_1, tiny_release

from bertfam.pretraining.features import ALBERT_FEATURES, FEATURES, instance_arrays
from bertfam.pretraining.instances import read_documents
from bertfam.pretraining.ngram_masking import (
    AlbertInstanceOptions,
    OnTheFlyMasking,
    albert_instances,
)
from bertfam.testing import (
    assert_same_checkpoint_weights,
    checkpoint_model_weights,
    horovod_mpirun,
)
from bertfam.tokenization.sentencepiece import SentencePieceTokenizer

LENGTH, SLOTS = 64, 10


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return tiny_release(tmp_path_factory.mktemp("albert") / "albert_base_v1")


@pytest.fixture(scope="module")
def records(release, shared_data, tmp_path_factory):
    """{"train": two record files, "eval": one, "arrays": the eval records' arrays}."""
    from bertfam.tf.pretraining_records import write_example_files

    text = shared_data / "pretraining" / "sample_text.txt"
    if not text.is_file():
        pytest.skip(f"{text} not found")
    tokenizer = SentencePieceTokenizer(release / "30k-clean.model")
    options = AlbertInstanceOptions(max_seq_length=LENGTH, max_predictions_per_seq=SLOTS,
                                    dupe_factor=2)  # fmt: skip
    words = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
    instances = albert_instances(read_documents([text], tokenizer), words, options, seed=1)
    arrays = instance_arrays(instances, tokenizer, LENGTH, SLOTS)
    folder = tmp_path_factory.mktemp("records")
    train = [str(folder / f"train-{i}.tfrecord") for i in range(2)]
    write_example_files(arrays, train, show_progress=False, features=ALBERT_FEATURES)
    write_example_files(arrays, [str(folder / "eval.tfrecord")], False, ALBERT_FEATURES)
    write_example_files(arrays, [str(folder / "bert.tfrecord")], False, FEATURES)
    return {"folder": folder, "arrays": arrays}


def flags(release, records, output_dir, **overrides):
    values = {
        "albert_config_file": release / "albert_config.json",
        "input_file": records["folder"] / "train-*.tfrecord",
        "eval_file": records["folder"] / "eval.tfrecord",
        "output_dir": output_dir,
        "init_checkpoint": release / "model.ckpt-best",
        "do_train": "True",
        "do_eval": "True",
        "train_batch_size": 8,
        "eval_batch_size": 512,  # every record in one batch
        "max_eval_steps": 1,
        "max_seq_length": LENGTH,
        "max_predictions_per_seq": SLOTS,
        "optimizer": "lamb",
        "learning_rate": 0.01,
        "num_train_steps": 6,
        "num_warmup_steps": 2,
        "save_checkpoints_steps": 3,
        "deterministic_run": "True",
    }
    values.update(overrides)
    return ["run_pretraining.py"] + [f"--{key}={value}" for key, value in values.items()]


def checkpoint_scores(release, prefix, arrays):
    """Google's pre-training eval metrics of the weights in `prefix` on `arrays`,
    computed here with modeling.py (its parity with HuggingFace is test_modeling's)."""
    import modeling
    import tensorflow as tf

    from bertfam.albert_config import AlbertConfig
    from bertfam.tf.checkpoint import variables_by_name

    model = modeling.AlbertForPreTraining(
        AlbertConfig.from_json_file(release / "albert_config.json")
    )
    variables = variables_by_name(model)
    saved = checkpoint_model_weights(prefix)
    for name, variable in variables.items():
        variable.assign(saved[name])
    mlm, sop = model(
        *(tf.constant(arrays[n], tf.int32) for n in ("input_ids", "input_mask", "segment_ids")),
        tf.constant(arrays["masked_lm_positions"], tf.int32),
    )
    log_probs = tf.nn.log_softmax(mlm).numpy()
    ids, weights = arrays["masked_lm_ids"], arrays["masked_lm_weights"]
    picked = np.take_along_axis(log_probs, ids[..., None], -1)[..., 0]
    sop_log_probs = tf.nn.log_softmax(sop).numpy()
    labels = arrays["next_sentence_labels"][:, 0]
    sop_losses = -sop_log_probs[np.arange(len(labels)), labels]
    mlm_loss = -(weights * picked).sum() / weights.sum()
    return {
        "masked_lm_accuracy": (weights * (log_probs.argmax(-1) == ids)).sum() / weights.sum(),
        "masked_lm_loss": mlm_loss,
        "sentence_order_accuracy": (sop_log_probs.argmax(-1) == labels).mean(),
        "sentence_order_loss": sop_losses.mean(),
        "loss": -(weights * picked).sum() / (weights.sum() + 1e-5) + sop_losses.mean(),
    }


def eval_results(output_dir):
    lines = (output_dir / "eval_results.txt").read_text().splitlines()
    return {key: float(value) for key, value in (line.split(" = ") for line in lines)}


def test_trains_and_evaluates_what_the_checkpoint_computes(release, records, tmp_path):
    result = run(flags(release, records, tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    results = eval_results(tmp_path)
    assert sorted(results) == ["global_step", "loss", "masked_lm_accuracy", "masked_lm_loss",
                               "sentence_order_accuracy", "sentence_order_loss"]  # fmt: skip
    assert results["global_step"] == 6
    expected = checkpoint_scores(release, tmp_path / "model.ckpt-6", records["arrays"])
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-5), key
    # Trained: the checkpoint moved away from the release's weights.
    before = checkpoint_scores(release, release / "model.ckpt-best", records["arrays"])
    assert results["loss"] < before["loss"]


def test_two_workers_at_half_the_batch_train_as_one_process_also_after_a_sigterm_to_one(
    release, records, tmp_path
):
    """SIGTERM reaches rank 1 alone after update 4: both workers stop there, rank 0 writes
    the one checkpoint, and the rerun ends where one process at twice the batch does."""
    one, two = tmp_path / "one", tmp_path / "two"
    single = run(flags(release, records, one, do_eval="False"))
    assert single.returncode == 0, single.stderr[-3000:]
    distributed = flags(release, records, two, do_eval="False", train_batch_size=4,
                        use_horovod="true")  # fmt: skip
    stopped = run_signalling_rank_1(distributed, 4)
    assert stopped.returncode != 0, stopped.stderr[-3000:]  # mpirun reports 143 its own way
    assert (
        f"run_pretraining.py: stopped by SIGTERM after update 4; checkpoint {two}/model.ckpt-4: "
        "rerun the same command to resume"
    ) in stopped.stderr
    resumed = run(distributed, launcher=horovod_mpirun())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_checkpoint_weights(two / "model.ckpt-6", one / "model.ckpt-6", atol=2e-5)


def test_masked_lm_budget_masks_whole_words_as_records_are_read(release, records, tmp_path):
    result = run(flags(release, records, tmp_path, masked_lm_budget=0.15, optimizer="adamw"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 0 < eval_results(tmp_path)["masked_lm_loss"] < 20

    arrays = records["arrays"]
    masking = OnTheFlyMasking(0.15, SLOTS, vocab_size=100, mask_id=4, seed=3)
    again = OnTheFlyMasking(0.15, SLOTS, vocab_size=100, mask_id=4, seed=3)
    shown_as_mask = total = 0
    for row in range(len(arrays["input_ids"])):
        record = [arrays[n][row] for n in ("input_ids", "input_mask", "segment_ids",
                                           "token_boundary")]  # fmt: skip
        made = masking(*record)
        np.testing.assert_array_equal(made["input_ids"], again(*record)["input_ids"])
        real = int(arrays["input_mask"][row].sum())
        count = int(made["masked_lm_weights"].sum())
        positions = made["masked_lm_positions"][:count]
        assert 1 <= count <= min(SLOTS, max(1, round(0.15 * real)))
        assert list(positions) == sorted(set(positions))
        sep_a = int((arrays["segment_ids"][row][:real] == 0).sum()) - 1
        assert not {0, sep_a, real - 1} & set(positions)  # never [CLS] or a [SEP]
        np.testing.assert_array_equal(made["masked_lm_ids"][:count],
                                      arrays["input_ids"][row][positions])  # fmt: skip
        # Whole words: a masked piece that continues a word has its word's start masked.
        boundary = arrays["token_boundary"][row]
        for p in positions:
            start = p
            while not boundary[start] and start - 1 not in (0, sep_a):
                start -= 1
            assert start in positions, (row, p)
        unmasked = np.setdiff1d(np.arange(LENGTH), positions)
        np.testing.assert_array_equal(made["input_ids"][unmasked],
                                      arrays["input_ids"][row][unmasked])  # fmt: skip
        shown_as_mask += int((made["input_ids"][positions] == 4).sum())
        total += count
    assert 0.65 < shown_as_mask / total < 0.95  # 80% [MASK]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(use_einsum="true"), "--use_einsum: the dense layers have one implementation"),
        (dict(optimizer="sgd"), "--optimizer=sgd: lamb or adamw"),
        (dict(input_file="/nowhere/*.tfrecord"), "--input_file: '/nowhere/*.tfrecord' matches"),
        (dict(masked_lm_budget=0.15, input_file="{folder}/bert.tfrecord"),
         "token_boundary, which these records lack"),
        (dict(max_seq_length=128), "records have input_ids of length 64 but --max_seq_length=128"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_nothing_written(release, records, tmp_path, overrides,
                                                   message):  # fmt: skip
    overrides = {k: str(v).format(folder=records["folder"]) for k, v in overrides.items()}
    output_dir = tmp_path / "out"
    result = run(flags(release, records, output_dir, **overrides))
    if "records" in message:
        # Reading a record loads TensorFlow, whose CUDA plugin registration logs lines of
        # its own first: ours is the last line, and no traceback (as BERT's tests read it).
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and message in lines[-1], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    else:
        one_line_error(result, message)
    assert not output_dir.exists()
