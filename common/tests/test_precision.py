import json
from pathlib import Path

import pytest

from bertfam.precision import (
    Decision,
    PrecisionConfigError,
    bf16_setting,
    load_bf16_config,
    parse_bf16_config,
)

UPSTREAM_SHAPE = Path(__file__).parent / "data" / "bf16_bert.json"


@pytest.fixture(scope="module")
def bert():
    return load_bf16_config(str(UPSTREAM_SHAPE))


@pytest.mark.parametrize(
    "op_type, op_name, decision",
    [
        ("MatMul", "bert/encoder/layer_3/attention/self/query/MatMul", Decision.BF16),
        ("BatchMatMulV2", "bert/encoder/layer_0/attention/self/MatMul", Decision.BF16),
        ("Softmax", "bert/encoder/layer_0/attention/self/Softmax", Decision.BF16),
        ("AddV2", "bert/encoder/layer_0/output/add", Decision.FOLLOW_ANY),
        ("Reshape", "bert/encoder/Reshape", Decision.FOLLOW_ANY),
        # Listed exceptions by name: the mask add and scaling mul of attention go to bf16.
        ("AddV2", "bert/encoder/layer_11/attention/self/add", Decision.BF16),
        ("Mul", "bert/encoder/layer_11/attention/self/Mul", Decision.BF16),
        # ...but only with the op type the exception names, and only as a whole-name match.
        ("Mul", "bert/encoder/layer_11/attention/self/add", Decision.FP32),
        ("AddV2", "bert/encoder/layer_x/attention/self/add", Decision.FOLLOW_ANY),
        ("AddV2", "prefix/bert/encoder/layer_1/attention/self/add", Decision.FOLLOW_ANY),
        ("Sqrt", "global_norm/global_norm", Decision.BF16),
        ("Mul", "clip_by_global_norm/mul", Decision.BF16),
        # Not listed anywhere: fp32.
        ("Mul", "bert/encoder/layer_0/intermediate/dense/Mul", Decision.FP32),
        ("Erf", "bert/encoder/layer_0/intermediate/dense/Erf", Decision.FP32),
        # Name markers: an empty op type matches every op; KEEP beats everything.
        ("Erf", "gelu/FORCE_BF16_PRECISION/Erf", Decision.BF16),
        ("MatMul", "cls/squad/KEEP_FP32_PRECISION/MatMul", Decision.FP32),
        ("MatMul", "x/KEEP_FP32_PRECISION/FORCE_BF16_PRECISION/y", Decision.FP32),
    ],
)
def test_decisions_on_the_upstream_bert_file(bert, op_type, op_name, decision):
    assert bert.decide(op_type, op_name) is decision


def test_conditional_ops_follow_their_neighbours(bert):
    name = "bert/encoder/layer_0/output/add"
    assert bert.computes_in_bf16("AddV2", name, [True, False])
    assert not bert.computes_in_bf16("AddV2", name, [False, False])
    assert not bert.computes_in_bf16("AddV2", name)
    assert bert.computes_in_bf16("MatMul", "any/name")
    assert not bert.computes_in_bf16("Mul", "any/name", [True, True])


def test_strict_conditional_needs_all_inputs():
    config = parse_bf16_config({"strict_conditional_list": ["Mul"]})
    assert config.computes_in_bf16("Mul", "m", [True, True])
    assert not config.computes_in_bf16("Mul", "m", [True, False])
    assert not config.computes_in_bf16("Mul", "m", [])


def test_allow_list_spelling_and_missing_keys():
    config = parse_bf16_config({"allow_list": ["MatMul"]})
    assert config.allowlist == frozenset({"MatMul"})
    assert config.conditional_list == frozenset() and config.convertible_exceptions == ()


def write(tmp_path, text):
    path = tmp_path / "bf16.json"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"allowlist": ["MatMul",]}', "not valid JSON (line 1, column 25"),
        ('["MatMul"]', "the top level must be a JSON object, not list"),
        ('{"allowlist": [], "blocklist": []}', "unknown key 'blocklist'"),
        ('{"allowlist": [], "allow_list": []}', "'allow_list' repeats 'allowlist'"),
        ('{"allowlist": "MatMul"}', "'allowlist' must be a list of op type names, not str"),
        (
            '{"conditional_list": ["Add", 3]}',
            "conditional_list[1] must be a non-empty op type name, not 3",
        ),
        (
            '{"convertible_exceptions": [["a", "Mul", "x"]]}',
            "convertible_exceptions[0] must be a [name_regex, op_type] pair",
        ),
        (
            '{"non_convertible_exceptions": {"a": "b"}}',
            "'non_convertible_exceptions' must be a list of [name_regex, op_type] pairs",
        ),
        (
            '{"non_convertible_exceptions": [["bert/(layer", ""]]}',
            "non_convertible_exceptions[0]: bad regex 'bert/(layer'",
        ),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(PrecisionConfigError) as caught:
        load_bf16_config(path)
    message = str(caught.value)
    assert message.startswith(f"bf16 config {path}: ")
    assert problem in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(PrecisionConfigError, match="no such file"):
        load_bf16_config(str(tmp_path / "absent.json"))


def test_bf16_setting_flag_and_environment(tmp_path):
    path = write(tmp_path, json.dumps({"allowlist": ["MatMul"]}))
    assert bf16_setting(None, None) is None
    assert bf16_setting("", None) is None
    assert bf16_setting(path, None) == path
    assert bf16_setting(None, path) == path
    assert bf16_setting("", path) == path  # an empty flag is the default, not "off"
    assert bf16_setting(None, "1") == "full"
    assert bf16_setting(None, "True") == "full"
    assert bf16_setting(None, "basic") == "basic"
    assert bf16_setting(None, "false") is None
    assert bf16_setting("0", path) is None  # the flag wins
    with pytest.raises(PrecisionConfigError, match="'nofile.json' is neither a JSON file"):
        bf16_setting("nofile.json", None)
