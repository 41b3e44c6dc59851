"""bf16 from the HMP op lists: listed ops compute (and return) bf16 or fp32 as listed."""

import re
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import modeling
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from bertfam import tinydata
from bertfam.testing.hmp_reference import ReferenceOpListPrecision
from bertfam.torch import autocast_lists, hmp
from bertfam.torch.autocast_lists import AutocastOpLists, NotCarried, op_list_precision
from bertfam.torch.hmp import OpListError, OpListPrecision, op_name, read_op_list
from bertfam.torch.losses import pretraining_losses, span_loss

FOLDER = Path(__file__).resolve().parents[1]
OP_LISTS = FOLDER / "bf16_config"
LIST_PAIRS = {
    "bert": ("ops_bf16_bert.txt", "ops_fp32_bert.txt"),
    "pt": ("ops_bf16_bert_pt.txt", "ops_fp32_bert_pt.txt"),
}


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
            loss = span_loss(start, end, starts, ends)
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
    # nll_loss); their mean follows "add" and "div" (``/``), which the list puts in bf16.
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


# -- the fast path against the lists and against the reference ---------------------------


def lists_say(name: str, bf16_ops, fp32_ops) -> Optional[torch.dtype]:
    """The dtype the lists give op `name`, read here without `bertfam.torch.hmp`: fp32 when
    it (or a part of the composite) is on the fp32 list, bf16 when it (or every part) is on
    the bf16 list, None when the lists leave it alone. Attention is its matmuls: its
    kernels take the softmax in fp32 whatever they are given."""
    parts = {
        "cross_entropy": ("log_softmax", "nll_loss"),
        "scaled_dot_product_attention": ("matmul",),
    }.get(name, (name,))
    if any(part in fp32_ops for part in parts):
        return torch.float32
    if all(part in bf16_ops for part in parts):
        return torch.bfloat16
    return None


def tensors_in(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [tensor for item in value for tensor in tensors_in(item)]
    if isinstance(value, dict):
        return [tensor for item in value.values() for tensor in tensors_in(item)]
    return []


@dataclass
class Call:
    """One call the model made: the tensors it passed and those the op then ran on."""

    name: str
    func: object
    given: list
    computed: Optional[list] = None
    casts: int = 0  # `.to` calls the precision mode made for this call
    result: list = field(default_factory=list)

    def summary(self) -> tuple:
        return self.name, tuple(t.dtype for t in self.computed), self.casts


class ModelCalls(TorchFunctionMode):
    """Above the precision mode: each call as the model makes it."""

    def __init__(self, calls: List[Call]):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        call = Call(op_name(func), func, tensors_in((args, kwargs)))
        self.calls.append(call)
        result = func(*args, **kwargs)
        call.result = tensors_in(result)
        return result


class OpCalls(TorchFunctionMode):
    """Below the precision mode: what the op runs on after the casts, and the casts."""

    def __init__(self, calls: List[Call]):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        call = self.calls[-1]
        if func == call.func:  # the op itself comes last, after its casts
            call.computed = tensors_in((args, kwargs))
        elif op_name(func) == "to":
            call.casts += 1
        return func(*args, **kwargs)


def precision_from(pair: str, implementation=OpListPrecision):
    bf16, fp32 = LIST_PAIRS[pair]
    return implementation.from_files(OP_LISTS / bf16, OP_LISTS / fp32)


def training_step(kind: str) -> tuple:
    """(model, forward_and_loss) for one tiny step, the same from the same seed; dropout on,
    so the masks must match too, and padding in the last rows."""
    torch.manual_seed(0)
    config = tinydata.tiny_bert_config(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    ids = torch.randint(1, 50, (4, 16))
    mask = torch.ones_like(ids)
    mask[2:, 12:] = 0
    types = (torch.arange(16) >= 8).long().expand(4, 16)
    if kind == "squad":
        model = modeling.BertForQuestionAnswering(config)
        starts, ends = torch.tensor([1, 2, 3, 20]), torch.tensor([2, 3, 9, 20])

        def loss():
            start, end = model(ids, mask, types)
            return span_loss(start, end, starts, ends)

    else:  # run_pretraining.py's step: the masked-LM head on 3 positions a row
        model = modeling.BertForPreTraining(config)
        positions = torch.tensor([[1, 4, 0], [2, 5, 9], [3, 7, 0], [1, 2, 3]])
        labels = ids.gather(1, positions).masked_fill(positions == 0, -1)
        next_sentence = torch.tensor([0, 1, 1, 0])

        def loss():
            mlm, nsp = model(ids, mask, types, masked_positions=positions)
            mlm_sum, nsp_sum = pretraining_losses(mlm, labels, nsp, next_sentence)
            return mlm_sum / 9 + nsp_sum / 4

    return model.train(), loss


def traced_step(kind: str, precision) -> tuple:
    """Runs forward, loss and backward; (calls, loss, {name: grad})."""
    model, loss_fn = training_step(kind)
    calls: List[Call] = []
    torch.manual_seed(1)
    with OpCalls(calls), precision, ModelCalls(calls):
        loss = loss_fn()
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(g is not None and g.dtype == torch.float32 for g in grads.values())
    return calls, loss, grads


ALWAYS_CALLED = {  # listed ops a step calls, whichever pair; "add" and "div" only on one
    "embedding", "layer_norm", "dropout", "linear", "scaled_dot_product_attention", "gelu",
    "cross_entropy",
}  # fmt: skip


@pytest.mark.parametrize("kind", ["squad", "pretraining"])
@pytest.mark.parametrize("pair", LIST_PAIRS)
def test_every_op_of_a_training_step_computes_in_the_listed_dtype(pair, kind):
    bf16_ops, fp32_ops = (read_op_list(OP_LISTS / name) for name in LIST_PAIRS[pair])
    calls, _, _ = traced_step(kind, precision_from(pair))
    listed = set()
    for call in calls:
        assert call.computed is not None, call.name
        dtype = lists_say(call.name, bf16_ops, fp32_ops)
        if dtype is None:  # left alone: the very tensors the model passed
            assert call.casts == 0 and len(call.computed) == len(call.given), call.name
            assert all(c is g for c, g in zip(call.computed, call.given)), call.name
            continue
        listed.add(call.name)
        first = 0
        if call.name.endswith("_"):  # in place: the others go to its own tensor's dtype
            dtype, first = call.given[0].dtype, 1
            assert call.computed[0] is call.given[0]
        expected_casts = 0
        for given, computed in zip(call.given[first:], call.computed[first:]):
            if given.is_floating_point() and given.dtype != dtype:
                expected_casts += 1
                assert computed.dtype == dtype, call.name
                assert torch.equal(computed, given.to(dtype)), call.name
            else:
                assert computed is given, call.name
        assert call.casts == expected_casts, call.name
        assert len(call.computed) == len(call.given), call.name
        floating = [t for t in call.result if t.is_floating_point()]
        assert floating and all(t.dtype == dtype for t in floating), call.name
    assert listed >= ALWAYS_CALLED
    # Both steps end in a mean (span_loss's, and the pre-training sums over their counts).
    assert ("add" in listed, "div" in listed) == (pair == "bert", pair == "bert")


@pytest.mark.parametrize("kind", ["squad", "pretraining"])
@pytest.mark.parametrize("pair", LIST_PAIRS)
def test_the_fast_path_casts_and_trains_exactly_as_the_reference(pair, kind):
    fast = precision_from(pair)
    calls, loss, grads = traced_step(kind, precision_from(pair, ReferenceOpListPrecision))
    for _ in range(2):  # the fast path's table empty, then filled
        fast_calls, fast_loss, fast_grads = traced_step(kind, fast)
        assert [c.summary() for c in fast_calls] == [c.summary() for c in calls]
        assert torch.equal(fast_loss, loss) and fast_loss.dtype == loss.dtype
        assert grads.keys() == fast_grads.keys()
        assert all(torch.equal(fast_grads[name], grads[name]) for name in grads)
    assert sum(c.casts for c in calls) > 20  # the weights', at least


@pytest.mark.parametrize("implementation", [OpListPrecision, ReferenceOpListPrecision])
def test_a_listed_in_place_op_casts_the_others_to_its_own_tensor(implementation):
    calls: List[Call] = []
    total, low = torch.zeros(3), torch.zeros(3, dtype=torch.bfloat16)
    ones, bf16_ones = torch.ones(3), torch.ones(3, dtype=torch.bfloat16)
    with OpCalls(calls), implementation({"add_"}, {"mul_"}), ModelCalls(calls):
        total.add_(bf16_ones)
        low.add_(ones, alpha=2)  # a keyword argument too
        low.mul_(ones)  # on the fp32 list, yet it writes into bf16
    assert [c.summary() for c in calls] == [
        ("add_", (torch.float32, torch.float32), 1),
        ("add_", (torch.bfloat16, torch.bfloat16), 1),
        ("mul_", (torch.bfloat16, torch.bfloat16), 1),
    ]
    assert total.tolist() == [1.0] * 3 and low.tolist() == [2.0] * 3


def python_calls_in(module, precision, op: Callable) -> List[str]:
    """The functions of `module` that run while `op()` runs under `precision`."""
    with precision:
        op()
    names = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == module.__file__:
            names.append(frame.f_code.co_name)

    with precision:
        sys.setprofile(profile)
        try:
            op()
        finally:
            sys.setprofile(None)
    return names


def test_a_warm_call_matches_no_names_and_rebuilds_no_arguments():
    lists = {"linear", "add", "layer_norm"}, {"embedding"}
    x, weight = torch.randn(2, 4).bfloat16(), nn.Parameter(torch.randn(3, 4))
    fast, reference = OpListPrecision(*lists), ReferenceOpListPrecision(*lists)
    passes, adds, norms, casts = (
        lambda: x.view(8),
        lambda: x + x,  # listed, nothing to cast
        lambda: F.layer_norm(x, (4,), eps=1e-5),  # a Python function, with keywords
        lambda: F.linear(x, weight),  # the weight is cast
    )
    assert python_calls_in(hmp, fast, passes) == ["__torch_function__"]
    assert python_calls_in(hmp, fast, adds) == ["__torch_function__", "_casts_any"]
    # args (x, (4,)) then kwargs: the tuple is looked into too
    assert python_calls_in(hmp, fast, norms) == ["__torch_function__"] + ["_casts_any"] * 3
    assert python_calls_in(hmp, fast, casts) == ["__torch_function__", "_casts_any", "_cast_each"]
    for op in (passes, adds):  # what the table saves: the name, its lookup, the rebuilt args
        assert {"op_name", "dtype_for"} <= set(python_calls_in(hmp, reference, op))


def test_compiled_under_the_fast_path_one_graph_no_recompile_same_loss():
    precision = precision_from("bert")
    model, loss_fn = training_step("squad")
    model.eval()  # no dropout: the compiled and eager random streams need not match

    def forward_and_loss():
        with precision:
            return loss_fn().float()

    compiled = torch.compile(forward_and_loss, backend="eager", fullgraph=True)
    with precision_from("bert", ReferenceOpListPrecision):
        expected = loss_fn().float()
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        assert torch.equal(compiled(), expected)
        forward_and_loss()  # eager: the table fills with what it has not seen
        with precision:
            torch.tanh(torch.ones(2))
        assert torch.equal(compiled(), expected)
    torch._dynamo.reset()


# -- the lists carried by torch.autocast (what --hmp runs off Gaudi) ----------------------


def carried(pair: str) -> AutocastOpLists:
    bf16, fp32 = (read_op_list(OP_LISTS / name) for name in LIST_PAIRS[pair])
    precision, how = op_list_precision(bf16, fp32, "cpu")
    assert isinstance(precision, AutocastOpLists), how
    return precision


def result_dtypes(calls: List[Call]) -> list:
    return [(call.name, tuple(t.dtype for t in call.result)) for call in calls]


@pytest.mark.parametrize("kind", ["squad", "pretraining"])
@pytest.mark.parametrize("pair", LIST_PAIRS)
def test_autocast_carries_the_shipped_lists_call_for_call(pair, kind):
    bf16_ops, fp32_ops = (read_op_list(OP_LISTS / name) for name in LIST_PAIRS[pair])
    calls, loss, grads = traced_step(kind, precision_from(pair, ReferenceOpListPrecision))
    precision = carried(pair)
    for _ in range(2):  # the kernels registered, then already there
        ours, our_loss, our_grads = traced_step(kind, precision)
        assert result_dtypes(ours) == result_dtypes(calls)
        for call in ours:  # and, read from the lists alone, each listed op's own dtype
            dtype = lists_say(call.name, bf16_ops, fp32_ops)
            if dtype is not None and not call.name.endswith("_"):
                assert all(t.dtype == dtype for t in call.result if t.is_floating_point())
        assert torch.equal(our_loss, loss) and our_loss.dtype == loss.dtype
        assert all(torch.equal(our_grads[name], grads[name]) for name in grads)


def test_outside_the_lists_autocast_keeps_its_own_rules():
    carried("bert")  # registers kernels for dropout, layer_norm, add...
    lists = OpListPrecision({"nll_loss"}, set())  # autocast's own rule says fp32
    precision, how = op_list_precision({"nll_loss"}, set(), "cpu")
    assert isinstance(precision, AutocastOpLists), how
    x, target = torch.randn(4, 8), torch.arange(4)
    with precision:
        assert F.nll_loss(x, target).dtype == lists.dtype_for("nll_loss") == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):  # HuggingFace's, say
        assert F.nll_loss(x.bfloat16(), target).dtype == torch.float32
        assert F.dropout(x, 0.1).dtype == torch.float32
        assert F.layer_norm(x, (8,)).dtype == torch.float32
        assert (x + x).dtype == torch.float32
        assert F.layer_norm(x.bfloat16(), (8,)).dtype == torch.bfloat16
    with precision:  # nested: the inner lists, then the outer ones again
        with carried("pt"):
            assert F.nll_loss(x, target).dtype == torch.float32  # on neither list: autocast's
        assert F.nll_loss(x, target).dtype == torch.bfloat16
    assert F.nll_loss(x.bfloat16(), target).dtype == torch.bfloat16  # no autocast at all


@pytest.mark.parametrize(
    "lists, why",
    [
        (({"add_"}, set()), "'add_' is in place"),
        ((set(), {"conv1d"}), "autocast on cpu has a rule for 'conv1d' that this cannot check"),
    ],
)
def test_lists_autocast_cannot_carry_run_in_the_mode(lists, why):
    precision, how = op_list_precision(*lists, "cpu")
    assert type(precision) is OpListPrecision and why in how
    with pytest.raises(NotCarried, match=re.escape(why)):
        AutocastOpLists(OpListPrecision(*lists), "cpu")


def test_autocast_runs_python_for_the_cast_ops_only():
    precision = carried("pt")
    x, weight = torch.randn(2, 4), nn.Parameter(torch.randn(3, 4))
    for op in (lambda: F.linear(x, weight), lambda: x.view(8), lambda: torch.tanh(x)):
        assert python_calls_in(autocast_lists, precision, op) == []
    for op in (lambda: F.dropout(x, 0.1), lambda: F.gelu(x)):  # autocast leaves them alone
        assert python_calls_in(autocast_lists, precision, op) == ["_cast_then_call"]
        with precision:
            assert op().dtype == torch.bfloat16


def test_a_compiled_step_takes_the_mode_which_it_compiles_away():
    bf16, fp32 = (read_op_list(OP_LISTS / name) for name in LIST_PAIRS["pt"])
    precision, how = op_list_precision(bf16, fp32, "cpu", graph=True)
    assert type(precision) is OpListPrecision and "compiled graph" in how
