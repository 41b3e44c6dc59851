"""--hmp (bf16_config/electra.json) on the CPU: the JSON's ops compute in bf16 in both
networks, its exceptions name their attention ops (the scale and the mask addition run
in bf16, as BERT's JSON has them), what it does not list stays fp32; and a short
pre-training run in bf16."""

from pathlib import Path

import modeling
import tensorflow as tf

from bertfam.electra_config import ElectraConfig
from bertfam.precision import load_bf16_config
from bertfam.tf.bf16 import FP32, Bf16Policy

FOLDER = Path(__file__).resolve().parents[1]
CONFIG = ElectraConfig(vocab_size=40, embedding_size=8, hidden_size=16, num_attention_heads=2,
                       intermediate_size=32, num_hidden_layers=2)  # fmt: skip


def traced(precision) -> dict:
    """{op name: compute dtype} of a traced training forward of both networks."""
    pair = modeling.ElectraPretrainingModel(CONFIG, 1.0, precision)
    spec = tf.TensorSpec([2, 8], tf.int32)

    def forward(ids, mask, types):
        positions = tf.zeros([2, 3], tf.int32)
        return pair.generator(ids, mask, types, positions, True), pair.discriminator(
            ids, mask, types, True
        )

    graph = tf.function(forward).get_concrete_function(spec, spec, spec).graph
    return {op.name: op.get_attr("T") for op in graph.get_operations() if "T" in op.node_def.attr}


def test_the_json_puts_both_networks_in_bf16():
    ops = traced(Bf16Policy(load_bf16_config(str(FOLDER / "bf16_config" / "electra.json"))))
    for network in ("electra", "generator"):
        for layer in (0, 1):
            attention = f"{network}/encoder/layer_{layer}/attention/self"
            # Mul is on no list: only the exception makes it bf16; so is the mask's add.
            assert ops[f"{attention}/Mul"] == tf.bfloat16, attention
            assert ops[f"{attention}/add"] == tf.bfloat16, attention
        assert ops[f"{network}/encoder/layer_1/intermediate/dense/MatMul"] == tf.bfloat16
    assert ops["discriminator_predictions/dense_1/MatMul"] == tf.bfloat16
    # The embedding sums come from fp32 tables and are on no list: fp32.
    assert ops["electra/embeddings/Add"] == tf.float32


def test_without_the_json_everything_is_fp32():
    assert set(traced(FP32).values()) - {tf.int32, tf.int64} == {tf.float32}
