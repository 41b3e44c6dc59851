"""bf16 as the JSON says, on the CPU: which ops of the traced graph compute in bf16, and
whether training still converges."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import modeling
import pytest
import tensorflow as tf

from bertfam import tinydata as tiny
from bertfam.precision import load_bf16_config, parse_bf16_config
from bertfam.tf.bf16 import FP32, Bf16Policy
from bertfam.tf.losses import span_loss

FOLDER = Path(__file__).resolve().parents[1]
BERT_JSON = FOLDER / "bf16_config" / "bert.json"
CONFIG = tiny.tiny_bert_config(
    vocab_size=64, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1
)


def traced_ops(precision):
    """The ops of one traced training forward pass plus the loss."""
    model = modeling.BertForQuestionAnswering(CONFIG, precision)
    spec = tf.TensorSpec([2, 16], tf.int32)
    position = tf.TensorSpec([2], tf.int32)

    @tf.function
    def loss(ids, mask, segments, start, end):
        start_logits, end_logits = model(ids, mask, segments, training=True)
        return span_loss(start_logits, end_logits, start, end)

    graph = loss.get_concrete_function(spec, spec, spec, position, position).graph
    return graph.get_operations()


def dtype_of(op):
    for attr in ("T", "dtype", "SrcT"):
        try:
            return tf.as_dtype(op.get_attr(attr))
        except ValueError:
            continue
    return None


def by_type(ops, op_type):
    return [op for op in ops if op.type == op_type]


def test_the_upstream_json_puts_listed_ops_in_bf16():
    ops = traced_ops(Bf16Policy(load_bf16_config(str(BERT_JSON))))
    for op_type in ("MatMul", "BatchMatMulV2", "BiasAdd", "Softmax"):
        found = by_type(ops, op_type)
        assert found and all(dtype_of(op) == tf.bfloat16 for op in found), op_type
    # Name exceptions: the attention scale and mask add are bf16, though Mul is unlisted.
    for name in (
        "bert/encoder/layer_0/attention/self/Mul",
        "bert/encoder/layer_1/attention/self/add",
    ):
        op = next(op for op in ops if op.name.endswith(name))
        assert dtype_of(op) == tf.bfloat16, name
    # Conditional ops follow their inputs: the residual adds after bf16 dense layers.
    residual = [op for op in by_type(ops, "AddV2") if op.name.endswith("/output/add")]
    assert len(residual) == 2 * CONFIG.num_hidden_layers
    assert all(dtype_of(op) == tf.bfloat16 for op in residual)
    # Unlisted ops stay fp32: the embedding lookups and the loss.
    assert all(
        dtype_of(op) == tf.float32 for op in by_type(ops, "GatherV2") if dtype_of(op) is not None
    )
    losses = by_type(ops, "SparseSoftmaxCrossEntropyWithLogits")
    assert losses and all(dtype_of(op) == tf.float32 for op in losses)


def test_without_a_json_nothing_is_bf16():
    ops = traced_ops(FP32)
    assert not [op.name for op in ops if dtype_of(op) == tf.bfloat16]


def test_keep_fp32_exceptions_by_name():
    config = json.loads(BERT_JSON.read_text())
    config["non_convertible_exceptions"].append(["bert/encoder/layer_1/.*", ""])
    ops = traced_ops(Bf16Policy(parse_bf16_config(config)))
    matmuls = Counter(
        ("layer_1" in op.name, dtype_of(op))
        for op in by_type(ops, "MatMul")
        if "/encoder/" in op.name
    )
    assert matmuls == Counter({(False, tf.bfloat16): 6, (True, tf.float32): 6})


def test_variables_and_gradients_stay_float32():
    precision = Bf16Policy(load_bf16_config(str(BERT_JSON)))
    model = modeling.BertForQuestionAnswering(CONFIG, precision)
    ids = tf.constant([[2, 5, 6, 3, 7, 8, 3, 0]], tf.int32)
    with tf.GradientTape() as tape:
        start, end = model(ids, tf.cast(ids > 0, tf.int32), tf.zeros_like(ids), training=True)
        loss = span_loss(start, end, tf.constant([4]), tf.constant([5]))
    grads = tape.gradient(loss, model.trainable_variables)
    assert start.dtype == tf.float32
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert all(g is not None and tf.convert_to_tensor(g).dtype == tf.float32 for g in grads)


def test_bf16_training_converges_like_fp32(tmp_path):
    vocab = tiny.vocab_file(tmp_path / "vocab.txt")
    config = tiny.bert_config_file(
        tmp_path / "bert_config.json", len(vocab.read_text().splitlines())
    )
    squad = tiny.squad_file(tmp_path / "train.json")
    common = [
        sys.executable,
        "run_squad.py",
        f"--vocab_file={vocab}",
        f"--bert_config_file={config}",
        "--do_train=True",
        f"--train_file={squad}",
        "--max_seq_length=48",
        "--doc_stride=16",
        "--max_query_length=12",
        "--learning_rate=1e-3",
        "--num_train_steps=40",
        "--train_batch_size=8",
        "--deterministic_run=true",
        "--save_checkpoints_steps=100",
    ]
    curves = {}
    for name, extra in (("bf16", [f"--bf16_config_path={BERT_JSON}"]), ("fp32", [])):
        out = tmp_path / name
        result = subprocess.run(
            common + extra + [f"--output_dir={out}"],
            cwd=FOLDER,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        curves[name] = [
            json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
        ]
    bf16, fp32 = curves["bf16"], curves["fp32"]
    assert bf16 != fp32  # bf16 really ran: rounding shows in the losses
    assert bf16[-1] < 0.1 * bf16[0]  # and it learned the task
    assert abs(bf16[-1] - fp32[-1]) < 0.05


def test_habana_modes_are_refused_on_cpu(tmp_path):
    from bertfam.devices import Device
    from bertfam.precision import PrecisionConfigError
    from bertfam.tf.device import bf16_policy

    with pytest.raises(PrecisionConfigError, match="TF_BF16_CONVERSION=full is a mode of Habana"):
        bf16_policy(Device("cpu", "tensorflow", 1), "full")
    assert bf16_policy(Device("hpu", "tensorflow", 8), str(BERT_JSON)) is FP32  # Habana converts


def test_the_upstream_json_covers_the_pretraining_heads():
    """run_pretraining.py with --bf16_config_path: the heads' matmuls and bias adds
    (cls/predictions against the word embeddings, cls/seq_relationship) run in bf16, the
    pooler's tanh too, and the losses stay fp32."""
    model = modeling.BertForPreTraining(CONFIG, Bf16Policy(load_bf16_config(str(BERT_JSON))))
    spec, predictions = tf.TensorSpec([2, 16], tf.int32), tf.TensorSpec([2, 4], tf.int32)

    @tf.function
    def loss(ids, mask, segments, positions, mlm_ids, weights, labels):
        from bertfam.tf.losses import pretraining_losses

        mlm, nsp = model(ids, mask, segments, positions, training=True)
        batch = {
            "masked_lm_ids": mlm_ids,
            "masked_lm_weights": weights,
            "next_sentence_labels": labels,
        }
        return pretraining_losses(mlm, nsp, batch)["total_loss"]

    graph = loss.get_concrete_function(
        spec, spec, spec, predictions, predictions, tf.TensorSpec([2, 4], tf.float32),
        tf.TensorSpec([2, 1], tf.int32),
    ).graph  # fmt: skip
    ops = graph.get_operations()
    for scope, op_type in (
        ("cls/predictions/", "BatchMatMulV2"),
        ("cls/predictions/", "BiasAdd"),
        ("cls/predictions/transform/dense/", "MatMul"),
        ("cls/seq_relationship/", "MatMul"),
        ("cls/seq_relationship/", "BiasAdd"),
        ("", "Tanh"),  # the pooler, whose output the NSP head reads
    ):
        found = [op for op in by_type(ops, op_type) if scope in op.name]
        assert found and all(dtype_of(op) == tf.bfloat16 for op in found), (scope, op_type)
    losses = by_type(ops, "SparseSoftmaxCrossEntropyWithLogits")
    assert len(losses) == 2 and all(dtype_of(op) == tf.float32 for op in losses)
