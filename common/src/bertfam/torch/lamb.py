"""BERT pre-training's optimizer and learning-rate schedule: NVLAMB and PolyWarmUpScheduler.

What upstream does, and where (read: HabanaAI/Model-References ``PyTorch/nlp/bert/
pretraining/lamb.py`` 6450b9c and ``run_pretraining.py`` 9d1b913; NVIDIA/apex
``apex/optimizers/fused_lamb.py`` 16fadfe and ``csrc/multi_tensor_lamb.cu`` 06a83ce;
NVIDIA/DeepLearningExamples ``PyTorch/LanguageModeling/BERT/schedulers.py``, 115867b and
the earlier float version Habana forked, e.g. jasperzhong/DeepLearningExamples 0835f6b):

- Parameter groups (``run_pretraining.py``, ``prepare_model_and_optimizer``, NVIDIA's and
  Habana's alike): every name from ``named_parameters()`` that *contains* one of "bias",
  "gamma", "beta" or "LayerNorm" gets weight decay 0, the rest 0.01. Plain substring
  matching, so "encoder.beta_gate.weight" is excluded too.
- The optimizer: apex's ``FusedLAMB`` on a CUDA GPU (NVIDIA), Habana's Python ``NVLAMB``
  (``pretraining/lamb.py``) on the CPU and on Gaudi, Habana's fused ``FusedLamb`` on Gaudi
  with ``--use_fused_lamb``; all built as ``X(groups, lr=learning_rate)``, so with their
  defaults: betas (0.9, 0.999), eps 1e-6, max_grad_norm 1.0, bias correction on,
  ``use_nvlamb=False``. Their arithmetic agrees (apex ``csrc/multi_tensor_lamb.cu``;
  Habana's own tests check its ``FusedLamb`` against a copy of the Python ``NVLAMB``):

  1. ``n`` = the L2 norm of all gradients of all groups together; gradients are divided by
     ``n / max_grad_norm`` when ``n > max_grad_norm`` (by 1 otherwise).
  2. Per group, ``t = group["step"]``, incremented first, so the first update uses t = 1;
     it counts calls to ``step()``, not the updates a parameter received.
  3. ``m = b1*m + (1-b1)*g``; ``v = b2*v + (1-b2)*g*g``;
     ``u = (m / (1-b1**t)) / (sqrt(v / (1-b2**t)) + eps) + weight_decay * w``.
  4. ``r = |w| / |u|`` (both before the update), 1.0 when either norm is 0; and 1.0 for
     a group whose weight decay is 0 unless ``use_nvlamb``: biases and LayerNorm take
     plain Adam steps. The paper (You et al. 2019) scales every layer; upstream does not.
  5. ``w -= lr * r * u``.

  Where they differ, which we follow: the Python NVLAMB divides ``p.grad`` in place by the
  clip factor and apex overwrites ``p.grad`` with ``u``; we leave gradients untouched.
  NVLAMB stores the per-step diagnostics ``weight_norm``, ``adam_norm`` and ``trust_ratio``
  in each parameter's state (and so in every checkpoint); we keep only ``exp_avg`` and
  ``exp_avg_sq`` there. ``t`` stays where all three keep it, ``param_groups[i]["step"]``:
  PolyWarmUpScheduler reads it, and upstream's phase-2 resume rewrites it. apex's
  ``bias_correction``, ``grad_averaging`` and ``adam_w_mode`` switches (and NVIDIA's newer
  FusedLAMBAMP with loss scaling) are not offered: BERT pre-training never changes them.
- The schedule (``schedulers.py``; NVIDIA's newer one computes the same on device tensors
  from an explicit ``base_lr``): a ``torch.optim.lr_scheduler._LRScheduler`` whose
  ``step()`` ignores its own counter and sets
  ``last_epoch = optimizer.param_groups[0]["step"] + 1`` (1 before the first update);
  the training loop calls it just *before* ``optimizer.step()``, so update k (from 1) runs
  with progress ``k / total_steps``, and the first one with a small non-zero rate. The
  rate is ``base_lr * progress / warmup`` while ``progress < warmup`` (a proportion of the
  run), else ``base_lr * (1 - progress) ** degree``. Past ``total_steps`` upstream raises
  a negative number to a fractional power and stores a complex rate; we hold 0 there.
  Upstream's checkpoints carry no scheduler state: a resumed run rebuilds the scheduler and
  picks the step up from the restored optimizer. Ours also round-trips through
  ``state_dict()``/``load_state_dict()`` (LRScheduler's).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
from torch import nn

# NVIDIA's (and Habana's) pre-training list, matched as substrings of the parameter name.
# Not HF fine-tuning's ("bias", "LayerNorm.weight", `bertfam.torch.finetune.NO_DECAY`):
# renaming a layer so that one of these stops (or starts) matching changes training.
PRETRAINING_NO_DECAY = ("bias", "gamma", "beta", "LayerNorm")

PRETRAINING_WEIGHT_DECAY = 0.01


def decays(name: str) -> bool:
    """Whether upstream's pre-training applies weight decay to the parameter called `name`."""
    return not any(part in name for part in PRETRAINING_NO_DECAY)


def lamb_parameter_groups(model: nn.Module, weight_decay: float = PRETRAINING_WEIGHT_DECAY):
    """Upstream's two groups: decayed parameters first, then the excluded ones at 0."""
    named = list(model.named_parameters())  # tied weights (decoder = word embeddings) once
    return [
        {"params": [p for name, p in named if decays(name)], "weight_decay": weight_decay},
        {"params": [p for name, p in named if not decays(name)], "weight_decay": 0.0},
    ]


class NVLamb(torch.optim.Optimizer):
    """NVLAMB as apex's FusedLAMB and Habana's NVLAMB compute it (see the module docstring).

    Each step is a handful of multi-tensor (``torch._foreach_*``) calls per group rather than
    a dozen kernels per parameter. The trust ratios leave the device once per group that
    uses them (one ``tolist()``) so that scaling every update is one multi-tensor call;
    Habana's NVLAMB reads each ratio back separately with ``.item()``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = PRETRAINING_WEIGHT_DECAY,
        max_grad_norm: float = 1.0,
        use_nvlamb: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"learning rate must be >= 0, not {lr}")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"betas must lie in [0, 1), not {betas}")
        if not max_grad_norm > 0.0:
            raise ValueError(f"max_grad_norm must be > 0, not {max_grad_norm}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
        )
        super().__init__(params, defaults)
        self.use_nvlamb = use_nvlamb

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], torch.Tensor]] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        present = [_with_gradients(group) for group in self.param_groups]
        clip = self._clip_factor([grad for _, grads in present for grad in grads])
        for group, (params, grads) in zip(self.param_groups, present):
            group["step"] = group.get("step", 0) + 1
            if params:
                self._update_group(group, params, grads, clip)
        return loss

    def _clip_factor(self, grads: List[torch.Tensor]) -> torch.Tensor:
        """max(global norm / max_grad_norm, 1), on the device: no wait for the GPU here."""
        if not grads:
            return torch.ones(())
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        # One norm over every group, so one threshold, read from `defaults` as upstream does.
        return torch.clamp(norm / self.defaults["max_grad_norm"], min=1.0)

    def _update_group(self, group, params, grads, clip: torch.Tensor) -> None:
        beta1, beta2 = group["betas"]
        step = group["step"]
        exp_avgs, exp_avg_sqs = self._moments(params)

        clipped = torch._foreach_div(grads, clip)
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, clipped, alpha=1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, clipped, clipped, value=1.0 - beta2)
        del clipped

        denominators = torch._foreach_div(exp_avg_sqs, 1.0 - beta2**step)
        torch._foreach_sqrt_(denominators)
        torch._foreach_add_(denominators, group["eps"])
        updates = torch._foreach_div(exp_avgs, 1.0 - beta1**step)
        torch._foreach_div_(updates, denominators)
        del denominators
        if group["weight_decay"] != 0:
            torch._foreach_add_(updates, params, alpha=group["weight_decay"])

        ratios = self._trust_ratios(group, params, updates)
        # Scaled first, then added, as upstream: p + (u * (-lr * r)).
        torch._foreach_mul_(updates, [-group["lr"] * ratio for ratio in ratios])
        torch._foreach_add_(params, updates)

    def _moments(self, params) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        exp_avgs, exp_avg_sqs = [], []
        for p in params:
            state = self.state[p]
            if not state:
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
        return exp_avgs, exp_avg_sqs

    def _trust_ratios(self, group, params, updates) -> List[float]:
        """|w| / |u| per parameter, 1.0 where either is 0 or where the group skips LAMB."""
        if group["weight_decay"] == 0 and not self.use_nvlamb:
            return [1.0] * len(params)
        weight_norms = torch.stack(torch._foreach_norm(params))
        update_norms = torch.stack(torch._foreach_norm(updates))
        usable = (weight_norms > 0) & (update_norms > 0)
        ratios = torch.where(usable, weight_norms / update_norms, torch.ones_like(weight_norms))
        return ratios.tolist()


def _with_gradients(group) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The group's parameters that have a gradient, and those gradients (upstream skips
    the others: no moment decay, though the group's step still counts)."""
    params, grads = [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError("NVLamb does not take sparse gradients")
        params.append(p)
        grads.append(p.grad)
    return params, grads


def make_lamb(
    model: nn.Module, learning_rate: float, use_fused_lamb: bool, device_kind: str
) -> torch.optim.Optimizer:
    """The pre-training optimizer over `lamb_parameter_groups(model)`.

    On Gaudi (``device_kind == "hpu"``) with ``--use_fused_lamb``: Habana's FusedLamb, built
    as upstream builds it (its defaults are the NVLAMB constants). Everywhere else NVLamb,
    whose step is already multi-tensor, so ``--use_fused_lamb`` on a GPU or CPU changes
    nothing (upstream took apex's FusedLAMB on every CUDA run; its arithmetic is the same).
    """
    groups = lamb_parameter_groups(model)
    if use_fused_lamb and device_kind == "hpu":
        from habana_frameworks.torch.hpex.optimizers import FusedLamb

        return FusedLamb(groups, lr=learning_rate)
    return NVLamb(groups, lr=learning_rate)


# ---------------------------------------------------------------------------- schedule


def poly_warmup_lr(
    base_lr: float, update: float, warmup: float, total_steps: float, degree: float = 0.5
) -> float:
    """The rate of optimizer update number `update` (from 1): linear warm-up over the
    proportion `warmup` of `total_steps`, then polynomial decay to 0 at `total_steps`."""
    progress = update / total_steps
    if progress < warmup:
        return base_lr * progress / warmup
    return base_lr * max(0.0, 1.0 - progress) ** degree


def updates_done(optimizer: torch.optim.Optimizer) -> int:
    """How many steps the optimizer has taken, as it counts them in ``param_groups[0]``."""
    group = optimizer.param_groups[0]
    if "step" in group:
        return int(group["step"])
    if optimizer.state:
        # torch's own optimizers count per parameter; upstream's rate would freeze here.
        raise TypeError(
            f"{type(optimizer).__name__} does not count its steps in param_groups[0]['step'];"
            " PolyWarmUpScheduler needs an optimizer that does (NVLamb, FusedLamb)"
        )
    return 0


class PolyWarmUpScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Upstream's schedule: call ``step()`` just before ``optimizer.step()``.

    The rate set for the coming update is `poly_warmup_lr` of ``updates_done + 1``; the
    constructor sets the first update's already. `warmup` is a proportion of the run
    (``--warmup_proportion``), `total_steps` the run's updates (``--max_steps``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup: float,
        total_steps: float,
        degree: float = 0.5,
    ):
        if not total_steps > 0:
            raise ValueError(f"total_steps must be > 0, not {total_steps}")
        self.warmup = warmup
        self.total_steps = total_steps
        self.degree = degree
        super().__init__(optimizer)

    def step(self) -> None:  # type: ignore[override]
        # The optimizer's count, not our own: a run resumed from a checkpoint without
        # scheduler state (upstream's) continues where its optimizer stopped.
        self.last_epoch = updates_done(self.optimizer) + 1
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_lr(self) -> List[float]:
        return [
            poly_warmup_lr(base_lr, self.last_epoch, self.warmup, self.total_steps, self.degree)
            for base_lr in self.base_lrs
        ]
