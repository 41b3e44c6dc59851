"""bf16_config/albert.json on the CPU: the JSON's ops compute in bf16, its exceptions name
the shared layer's attention ops in every application (the scale and the mask addition
run in bf16, as BERT's JSON has them), and what the JSON does not list stays fp32."""

from pathlib import Path

import modeling
import tensorflow as tf

from bertfam.albert_config import AlbertConfig
from bertfam.precision import load_bf16_config
from bertfam.tf.bf16 import FP32, Bf16Policy

FOLDER = Path(__file__).resolve().parents[1]
CONFIG = AlbertConfig(vocab_size=40, embedding_size=8, hidden_size=16, num_attention_heads=2,
                      intermediate_size=32, num_hidden_layers=3)  # fmt: skip
LAYER = "bert/encoder/transformer/group_0/inner_group_0"


def traced(precision) -> dict:
    """{op name: compute dtype} of one traced training forward pass of the SQuAD model."""
    model = modeling.AlbertForQuestionAnswering(CONFIG, precision)
    spec = tf.TensorSpec([2, 8], tf.int32)
    forward = tf.function(lambda ids, mask, types: model(ids, mask, types, training=True))
    ops = forward.get_concrete_function(spec, spec, spec).graph.get_operations()
    return {op.name: op.get_attr("T") for op in ops if "T" in op.node_def.attr}


def test_the_json_puts_each_application_of_the_shared_layer_in_bf16():
    ops = traced(Bf16Policy(load_bf16_config(str(FOLDER / "bf16_config" / "albert.json"))))
    # The shared layer's ops get _1, _2 scopes in its second and third application.
    for scope in ("self", "self_1", "self_2"):
        attention = f"{LAYER}/attention_1/{scope}"
        # Mul is on no list: only the exception makes it bf16; so is the mask's add.
        assert ops[f"{attention}/Mul"] == tf.bfloat16, scope
        assert ops[f"{attention}/add"] == tf.bfloat16, scope
        assert ops[f"{attention}/MatMul"] == tf.bfloat16, scope  # BatchMatMulV2: allowed
    assert ops[f"{LAYER}/ffn_1/intermediate/dense/MatMul"] == tf.bfloat16
    assert ops["bert/encoder/embedding_hidden_mapping_in/MatMul"] == tf.bfloat16
    head = [dtype for name, dtype in ops.items() if name.startswith("cls/squad/MatMul")]
    assert head == [tf.bfloat16]
    # The embedding sums come from fp32 tables and are on no list: fp32.
    assert ops["bert/embeddings/Add"] == ops["bert/embeddings/Add_1"] == tf.float32


def test_without_the_json_everything_is_fp32():
    assert set(traced(FP32).values()) - {tf.int32, tf.int64} == {tf.float32}
