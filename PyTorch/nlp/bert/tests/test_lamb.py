"""NVLAMB against the paper's arithmetic in NumPy float64, decay by name, the schedule, resume."""

import io
import sys
import types

import modeling
import numpy as np
import pytest
import torch
from torch import nn

from bertfam import tinydata
from bertfam.torch.lamb import (
    NVLamb,
    PolyWarmUpScheduler,
    lamb_parameter_groups,
    make_lamb,
    poly_warmup_lr,
)

# Upstream's constants: run_pretraining.py builds FusedLAMB / NVLAMB(groups, lr=...) and
# takes these defaults.
BETA1, BETA2, EPS, WEIGHT_DECAY, MAX_GRAD_NORM = 0.9, 0.999, 1e-6, 0.01, 1.0
LR = 0.05
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# Written out rather than derived from the module's rule, so the reference is independent.
DECAYED = {"encoder.dense.weight", "head.weight", "pooler.dense.weight"}


def initial_parameters():
    g = torch.Generator().manual_seed(0)
    return {
        "encoder.dense.weight": 0.3 * torch.randn(4, 3, generator=g),  # |w| well below |u|
        "encoder.dense.bias": torch.zeros(4),  # no decay, |w| = 0
        "encoder.LayerNorm.weight": 1.0 + 0.1 * torch.randn(4, generator=g),  # no decay
        "head.weight": torch.zeros(2, 4),  # decayed, |w| = 0: the trust ratio falls back to 1
        "pooler.dense.weight": torch.randn(3, 3, generator=g),
    }


# Per update, each parameter's gradient scale; None: no gradient that step.
# Update 1: the large dense gradient alone takes the global norm past 1.0 (clipped);
# update 2: every gradient small (not clipped), the pooler has none; update 3: clipped.
GRADIENT_SCALES = [
    {
        "encoder.dense.weight": 2.0,
        "encoder.dense.bias": 0.05,
        "encoder.LayerNorm.weight": 0.05,
        "head.weight": 0.05,
        "pooler.dense.weight": 0.05,
    },
    {
        "encoder.dense.weight": 0.1,
        "encoder.dense.bias": 0.02,
        "encoder.LayerNorm.weight": 0.03,
        "head.weight": 0.05,
        "pooler.dense.weight": None,
    },
    {
        "encoder.dense.weight": 0.3,
        "encoder.dense.bias": 1.5,
        "encoder.LayerNorm.weight": 0.2,
        "head.weight": 0.1,
        "pooler.dense.weight": 0.4,
    },
]
CLIPPED = [True, False, True]


def gradients(update: int, shapes):
    g = torch.Generator().manual_seed(100 + update)
    return {
        name: None if scale is None else scale * torch.randn(shapes[name], generator=g)
        for name, scale in GRADIENT_SCALES[update].items()
    }


def module_of(parameters) -> nn.Module:
    """A module whose named_parameters() are exactly `parameters` (dotted names)."""
    root = nn.Module()
    for name, value in parameters.items():
        *path, leaf = name.split(".")
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, nn.Parameter(value.clone()))
    return root


# ------------------------------------------------------------------- NumPy reference


def reference_update(weights, moments, grads, t, use_nvlamb):
    """One update in float64: LAMB as You et al. 2019, Algorithm 2 (Adam moments with bias
    correction, ``r = m_hat / (sqrt(v_hat) + eps)``, ``u = r + decay * w``, ``w -= lr *
    |w| / |u| * u``), after NVIDIA's pre-normalisation of all gradients to a global norm of
    at most 1; as upstream, layers without decay keep ``|w| / |u| = 1`` unless NVLAMB is
    applied to every layer, and so does a layer whose ``|w|`` or ``|u|`` is 0."""
    present = {name: g for name, g in grads.items() if g is not None}
    global_norm = np.sqrt(sum(np.sum(g * g) for g in present.values()))
    divisor = max(global_norm / MAX_GRAD_NORM, 1.0)
    ratios = {}
    for name, grad in present.items():
        w, (m, v) = weights[name], moments[name]
        g = grad / divisor
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        r = (m / (1 - BETA1**t)) / (np.sqrt(v / (1 - BETA2**t)) + EPS)
        decay = WEIGHT_DECAY if name in DECAYED else 0.0
        u = r + decay * w
        w_norm, u_norm = np.linalg.norm(w), np.linalg.norm(u)
        layerwise = decay != 0.0 or use_nvlamb
        ratios[name] = w_norm / u_norm if layerwise and w_norm > 0 and u_norm > 0 else 1.0
        weights[name] = w - LR * ratios[name] * u
        moments[name] = (m, v)
    return global_norm, ratios


def run_reference(updates, use_nvlamb):
    initial = initial_parameters()
    shapes = {name: value.shape for name, value in initial.items()}
    weights = {name: value.double().numpy() for name, value in initial.items()}
    moments = {name: (np.zeros_like(w), np.zeros_like(w)) for name, w in weights.items()}
    diagnostics = []
    for update in range(updates):
        grads = {
            name: None if g is None else g.double().numpy()
            for name, g in gradients(update, shapes).items()
        }
        diagnostics.append(reference_update(weights, moments, grads, update + 1, use_nvlamb))
    return weights, moments, diagnostics


def run_nvlamb(updates, use_nvlamb, device):
    model = module_of(initial_parameters()).to(device)
    optimizer = NVLamb(lamb_parameter_groups(model), lr=LR, use_nvlamb=use_nvlamb)
    for update in range(updates):
        take_update(model, optimizer, update)
    return model, optimizer


def take_update(model, optimizer, update):
    shapes = {name: p.shape for name, p in model.named_parameters()}
    grads = gradients(update, shapes)
    for name, p in model.named_parameters():
        p.grad = None if grads[name] is None else grads[name].to(p.device)
    optimizer.step()
    optimizer.zero_grad()


def assert_matches_reference(model, optimizer, weights, moments):
    for name, p in model.named_parameters():
        state = optimizer.state[p]
        m, v = moments[name]
        np.testing.assert_allclose(
            p.detach().cpu().double(), weights[name], atol=1e-6, err_msg=name
        )
        np.testing.assert_allclose(state["exp_avg"].cpu().double(), m, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(state["exp_avg_sq"].cpu().double(), v, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_nvlamb", [False, True])
def test_one_update_matches_the_paper(use_nvlamb, device):
    weights, moments, [(global_norm, ratios)] = run_reference(1, use_nvlamb)
    model, optimizer = run_nvlamb(1, use_nvlamb, device)

    assert_matches_reference(model, optimizer, weights, moments)
    assert global_norm > MAX_GRAD_NORM  # clipped
    assert abs(ratios["encoder.dense.weight"] - 1.0) > 0.5  # the trust ratio matters
    assert ratios["head.weight"] == ratios["encoder.dense.bias"] == 1.0  # |w| = 0
    no_decay_ratio = ratios["encoder.LayerNorm.weight"]
    assert no_decay_ratio != 1.0 if use_nvlamb else no_decay_ratio == 1.0
    assert [group["step"] for group in optimizer.param_groups] == [1, 1]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_nvlamb", [False, True])
def test_three_updates_match_the_paper(use_nvlamb, device):
    weights, moments, diagnostics = run_reference(3, use_nvlamb)
    model, optimizer = run_nvlamb(3, use_nvlamb, device)

    assert_matches_reference(model, optimizer, weights, moments)
    assert [norm > MAX_GRAD_NORM for norm, _ in diagnostics] == CLIPPED
    # Bias correction counts calls to step(): the pooler, skipped once, is corrected with
    # t = 3 at update 3, as the reference does.
    assert [group["step"] for group in optimizer.param_groups] == [3, 3]


def test_the_update_leaves_gradients_alone():
    model = module_of(initial_parameters())
    optimizer = NVLamb(lamb_parameter_groups(model), lr=LR)
    grads = gradients(0, {name: p.shape for name, p in model.named_parameters()})
    for name, p in model.named_parameters():
        p.grad = grads[name].clone()
    optimizer.step()
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, grads[name]), name


# ------------------------------------------------------------------- decay by name


def test_decay_exclusions_by_name():
    names = [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.attention.self.query.bias",
        "bert.encoder.layer.0.intermediate.dense_act.weight",  # NVIDIA's checkpoint names
        "bert.encoder.layer.0.intermediate.dense_act.bias",
        "cls.predictions.bias",
        "cls.seq_relationship.weight",
        "old_checkpoint.norm.gamma",  # TF-style LayerNorm names
        "old_checkpoint.norm.beta",
        "mixer.betas_proj.weight",  # substring match: excluded too, as upstream
    ]
    model = module_of({name: torch.ones(2, 2) for name in names})
    decayed, excluded = lamb_parameter_groups(model)
    name_of = {p: name for name, p in model.named_parameters()}

    assert (decayed["weight_decay"], excluded["weight_decay"]) == (0.01, 0.0)
    assert [name_of[p] for p in decayed["params"]] == [
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.intermediate.dense_act.weight",
        "cls.seq_relationship.weight",
    ]
    assert len(excluded["params"]) == len(names) - 4


def test_on_bert_the_names_exclude_exactly_the_vectors():
    # BERT's excluded parameters are its biases and LayerNorm scales: every 1-D parameter
    # (nanoGPT's structural rule). A rename that breaks the name rule fails here.
    model = modeling.BertForPreTraining(tinydata.tiny_bert_config(num_hidden_layers=1))
    decayed, excluded = lamb_parameter_groups(model, weight_decay=0.02)
    grouped = decayed["params"] + excluded["params"]

    assert decayed["weight_decay"] == 0.02
    assert len(grouped) == len(set(grouped)) == len(list(model.parameters()))
    assert all(p.dim() >= 2 for p in decayed["params"])
    assert all(p.dim() == 1 for p in excluded["params"])


# ------------------------------------------------------------------- schedule


def test_poly_warmup_known_values():
    # warmup 0.25 of 8 updates: update 1 is half-way up; decay (1 - progress) ** 0.5 after.
    rates = [poly_warmup_lr(1.0, k, warmup=0.25, total_steps=8) for k in (1, 2, 4, 8, 9)]
    assert rates == pytest.approx([0.5, 0.75**0.5, 0.5**0.5, 0.0, 0.0])
    assert poly_warmup_lr(2.0, 6, warmup=0.25, total_steps=8, degree=1.0) == pytest.approx(0.5)


def upstream_rate(base_lr, k, warmup, total):
    progress = k / total
    return base_lr * progress / warmup if progress < warmup else base_lr * (1 - progress) ** 0.5


def test_scheduler_rates_over_a_short_run():
    model = module_of(initial_parameters())
    optimizer = NVLamb(lamb_parameter_groups(model), lr=0.1)
    scheduler = PolyWarmUpScheduler(optimizer, warmup=0.3, total_steps=10)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01 / 0.3] * 2)

    rates = []
    for update in range(10):
        scheduler.step()  # before optimizer.step(), as upstream's loop
        rates.append(optimizer.param_groups[1]["lr"])
        assert scheduler.get_last_lr()[0] == optimizer.param_groups[0]["lr"] == rates[-1]
        take_update(model, optimizer, update % 3)

    assert rates == pytest.approx([upstream_rate(0.1, k, 0.3, 10) for k in range(1, 11)])


def test_the_scheduler_needs_an_optimizer_that_counts_in_its_groups():
    model = module_of(initial_parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = PolyWarmUpScheduler(optimizer, warmup=0.3, total_steps=10)
    take_update(model, optimizer, 0)
    with pytest.raises(TypeError, match="param_groups"):
        scheduler.step()


# ------------------------------------------------------------------- resume


def build(lr=0.1):
    model = module_of(initial_parameters())
    optimizer = NVLamb(lamb_parameter_groups(model), lr=lr)
    scheduler = PolyWarmUpScheduler(optimizer, warmup=0.2, total_steps=10)
    return model, optimizer, scheduler


def train(model, optimizer, scheduler, updates):
    rates = []
    for update in updates:
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
        take_update(model, optimizer, update % 3)
    return rates


@pytest.mark.parametrize("with_scheduler_state", [True, False])
def test_resumed_run_continues_exactly(with_scheduler_state):
    # Upstream's checkpoints hold no scheduler state; the step comes from the optimizer's.
    model, optimizer, scheduler = build()
    uninterrupted = train(model, optimizer, scheduler, range(6))

    first = build()
    rates = train(*first, range(3))
    saved = io.BytesIO()
    torch.save(
        {
            "model": first[0].state_dict(),
            "optimizer": first[1].state_dict(),
            "scheduler": first[2].state_dict(),
        },
        saved,
    )
    saved.seek(0)
    checkpoint = torch.load(saved, weights_only=True)
    resumed_model, resumed_optimizer, resumed_scheduler = build()
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    if with_scheduler_state:
        resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    rates += train(resumed_model, resumed_optimizer, resumed_scheduler, range(3, 6))

    assert rates == uninterrupted
    for (name, p), q in zip(model.named_parameters(), resumed_model.parameters()):
        assert torch.equal(p, q), name
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(optimizer.state[p][key], resumed_optimizer.state[q][key]), name
    assert resumed_optimizer.param_groups[0]["step"] == 6


# ------------------------------------------------------------------- make_lamb


def test_make_lamb_is_nvlamb_off_gaudi():
    model = module_of(initial_parameters())
    for use_fused_lamb, device_kind in [(True, "gpu"), (True, "cpu"), (False, "hpu")]:
        optimizer = make_lamb(model, 0.006, use_fused_lamb, device_kind)
        assert isinstance(optimizer, NVLamb)
        assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [
            (0.006, 0.01),
            (0.006, 0.0),
        ]
        assert optimizer.param_groups[0]["eps"] == EPS
        assert optimizer.param_groups[0]["betas"] == (BETA1, BETA2)
        assert optimizer.defaults["max_grad_norm"] == MAX_GRAD_NORM


def test_make_lamb_takes_habanas_fused_lamb_on_gaudi(monkeypatch):
    built = {}

    def fused_lamb(groups, **kwargs):
        built.update(groups=groups, **kwargs)
        return "FusedLamb"

    names = ["habana_frameworks", "habana_frameworks.torch", "habana_frameworks.torch.hpex"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    optimizers = types.ModuleType("habana_frameworks.torch.hpex.optimizers")
    optimizers.FusedLamb = fused_lamb
    monkeypatch.setitem(sys.modules, optimizers.__name__, optimizers)

    model = module_of(initial_parameters())
    assert make_lamb(model, 0.006, True, "hpu") == "FusedLamb"
    assert built["lr"] == 0.006
    assert [g["weight_decay"] for g in built["groups"]] == [0.01, 0.0]
