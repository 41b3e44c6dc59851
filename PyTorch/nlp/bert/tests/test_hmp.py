"""bf16 from the HMP op lists: listed ops compute (and return) bf16 or fp32 as listed."""

import runpy
from pathlib import Path

import modeling
import pytest
import torch
import torch.nn.functional as F

from bertfam import tinydata
from bertfam.torch.hmp import OpListError, OpListPrecision, read_op_list

FOLDER = Path(__file__).resolve().parents[1]
OP_LISTS = FOLDER / "bf16_config"


@pytest.fixture
def finetuning_lists():
    return OpListPrecision.from_files(
        OP_LISTS / "ops_bf16_bert.txt", OP_LISTS / "ops_fp32_bert.txt"
    )


def test_the_upstream_fine_tuning_lists(finetuning_lists):
    assert read_op_list(OP_LISTS / "ops_bf16_bert.txt") >= {
        "linear",
        "matmul",
        "softmax",
        "gelu",
        "layer_norm",
        "add",
    }
    assert read_op_list(OP_LISTS / "ops_fp32_bert.txt") == {"embedding", "nll_loss", "log_softmax"}
    x, w = torch.randn(4, 8), torch.randn(3, 8)
    table = torch.randn(10, 8, dtype=torch.bfloat16)
    with finetuning_lists:
        assert F.linear(x, w).dtype == torch.bfloat16
        assert torch.matmul(x, w.t()).dtype == torch.bfloat16
        assert F.softmax(x, dim=-1).dtype == torch.bfloat16
        assert F.gelu(x).dtype == torch.bfloat16
        assert F.layer_norm(x, (8,)).dtype == torch.bfloat16
        assert (x + x).dtype == torch.bfloat16  # "add" covers the operator
        assert F.embedding(torch.tensor([1, 2]), table).dtype == torch.float32
        assert F.log_softmax(x.bfloat16(), dim=-1).dtype == torch.float32
        assert F.cross_entropy(x.bfloat16(), torch.tensor([0, 1, 2, 3])).dtype == torch.float32
        assert torch.tanh(x).dtype == torch.float32  # on neither list: left alone
        assert torch.tanh(x.bfloat16()).dtype == torch.bfloat16


def test_in_place_ops_write_into_their_own_tensor(finetuning_lists):
    total = torch.zeros(3)
    with finetuning_lists:
        total += torch.ones(3, dtype=torch.bfloat16)  # "iadd" is listed
    assert total.dtype == torch.float32 and total.tolist() == [1.0, 1.0, 1.0]


def train_tiny(precision):
    torch.manual_seed(0)
    config = tinydata.tiny_bert_config()
    model = modeling.BertForQuestionAnswering(config)
    ids = torch.randint(1, 50, (4, 16))
    starts, ends = torch.tensor([1, 2, 3, 4]), torch.tensor([2, 3, 4, 5])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses, dtypes = [], set()
    for _ in range(40):
        with precision:
            start, end = model(ids)
            loss = modeling.span_loss(start, end, starts, ends)
        dtypes.add((start.dtype, loss.dtype))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(
        p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in model.parameters()
    )
    return losses, dtypes


def test_a_model_trains_under_the_lists_like_fp32(finetuning_lists):
    bf16, dtypes = train_tiny(finetuning_lists)
    # The span head is a "linear": bf16. The two cross-entropies are fp32 (log_softmax,
    # nll_loss); their mean follows "add" and "truediv", which the list puts in bf16.
    assert dtypes == {(torch.bfloat16, torch.bfloat16)}
    fp32, fp32_dtypes = train_tiny(OpListPrecision(set(), set()))
    assert fp32_dtypes == {(torch.float32, torch.float32)}
    assert bf16 != fp32 and bf16[-1] < 0.25 * bf16[0]
    assert abs(bf16[-1] - fp32[-1]) < 0.1


def test_bad_lists(tmp_path):
    with pytest.raises(OpListError, match="no such file"):
        read_op_list(tmp_path / "absent.txt")
    bad = tmp_path / "ops.txt"
    bad.write_text("linear\nsoft max\n")
    with pytest.raises(OpListError, match=r"line 2: 'soft max' is not an op name"):
        read_op_list(bad)
    with pytest.raises(OpListError, match="both the bf16 and the fp32 list: linear"):
        OpListPrecision({"linear"}, {"linear"})


@pytest.mark.parametrize("script", ["run_glue.py", "run_squad.py"])
def test_hmp_alone_takes_the_folders_lists(script, tmp_path):
    parse_flags = runpy.run_path(str(FOLDER / "finetuning" / script))["parse_flags"]
    flags = ["--model_name_or_path", "x", "--output_dir", str(tmp_path), "--do_train", "--hmp"]
    if script == "run_glue.py":
        flags += ["--task_name", "mrpc", "--data_dir", str(tmp_path)]
    else:
        flags += ["--model_type", "bert"]
    config = parse_flags(flags)  # reads both lists: a missing one is an OpListError
    assert (config.hmp_bf16, config.hmp_fp32) == (
        str(OP_LISTS / "ops_bf16_bert.txt"),
        str(OP_LISTS / "ops_fp32_bert.txt"),
    )
