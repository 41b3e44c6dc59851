"""bf16_config/distilbert.json on the CPU: its exceptions name our ops, so the attention's
scale and mask addition run in bf16, as upstream's JSON intends, and the rest follows
the JSON's lists."""

from pathlib import Path

import modeling
import tensorflow as tf

from bertfam.distilbert_config import DistilBertConfig
from bertfam.precision import load_bf16_config
from bertfam.tf.bf16 import FP32, Bf16Policy

FOLDER = Path(__file__).resolve().parents[1]
CONFIG = DistilBertConfig(vocab_size=40, hidden_size=16, num_attention_heads=2,
                          intermediate_size=32, num_hidden_layers=2, qa_dropout=0.1)  # fmt: skip


def traced(precision) -> dict:
    """{op name: compute dtype} of one traced training forward pass."""
    model = modeling.DistilBertForQuestionAnswering(CONFIG, precision)
    spec = tf.TensorSpec([2, 8], tf.int32)
    forward = tf.function(lambda ids, mask: model(ids, mask, training=True))
    ops = forward.get_concrete_function(spec, spec).graph.get_operations()
    return {op.name: op.get_attr("T") for op in ops if "T" in op.node_def.attr}


def test_the_attention_exceptions_match_our_op_names():
    ops = traced(Bf16Policy(load_bf16_config(str(FOLDER / "bf16_config" / "distilbert.json"))))
    for layer in range(CONFIG.num_hidden_layers):
        scope = f"distilbert/transformer/layer/{layer}/attention"
        # Mul is not in any list: only the exception makes it bf16.
        assert ops[f"{scope}/Mul"] == tf.bfloat16 and ops[f"{scope}/add"] == tf.bfloat16
    assert ops["distilbert/transformer/layer/1/ffn/lin1/MatMul"] == tf.bfloat16
    head = [dtype for name, dtype in ops.items() if name.startswith("cls/squad/MatMul")]
    assert head == [tf.bfloat16]


def test_without_the_json_everything_is_fp32():
    assert set(traced(FP32).values()) - {tf.int32, tf.int64} == {tf.float32}
