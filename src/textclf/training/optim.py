"""Optimizers, the warm-up schedule and sparse embedding updates.

Large trainable embedding tables dominate the cost of a step with dense gradients: every
step touches every row. With `nn.Embedding(sparse=True)` only the rows of the batch's tokens
are updated. torch's SGD and Adagrad take sparse gradients directly; Adam/AdamW do not, so
the table gets its own `SparseAdam` (lazy Adam: moments of a row advance only when the row is
used). RMSprop has no sparse form and weight decay cannot be applied to sparse gradients, so
those fall back to dense updates.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from textclf.settings import OptimizerConfig, RNNConfig, TrainingConfig

log = logging.getLogger(__name__)

SPARSE_AUTO_MIN_WEIGHTS = 2_000_000
"""`sparse_embeddings: auto` turns sparse updates on above this many embedding weights."""
SPARSE_CAPABLE = {"sgd", "adagrad", "adam", "adamw"}
"""Optimizers with a sparse path. For adam/adamw it is torch's SparseAdam ("lazy" Adam: moments
of rows absent from a batch are not decayed), a different algorithm, so it is used only when
asked for explicitly (`sparse_embeddings: true`)."""


def sparse_embedding_choice(
    model_cfg: RNNConfig, training_cfg: TrainingConfig, vocab_size: int, device: torch.device
) -> tuple[bool, str]:
    """(use sparse embedding gradients?, why) for a variant."""
    setting = training_cfg.sparse_embeddings
    setting = {"true": True, "false": False}.get(setting, setting) if isinstance(setting, str) else setting
    emb, opt = model_cfg.embedding, training_cfg.optimizer
    if setting is False:
        return False, "off (sparse_embeddings: false)"
    if emb.freeze:
        return False, "off (embedding frozen)"
    if opt.name not in SPARSE_CAPABLE:
        return False, f"off ({opt.name} has no sparse form)"
    if opt.name == "sgd" and opt.momentum > 0:
        # torch never coalesces a sparse momentum buffer: it grows every step
        return False, "off (sgd momentum needs dense gradients)"
    if setting == "auto" and opt.name in ("adam", "adamw"):
        return False, f"off (auto: {opt.name}'s sparse form is lazy Adam; set sparse_embeddings: true to use it)"
    if opt.weight_decay > 0:
        return False, "off (weight_decay > 0 needs dense gradients)"
    if device.type == "mps":
        return False, "off (sparse gradients unsupported on mps)"
    weights = vocab_size * emb.dim
    if setting == "auto" and weights <= SPARSE_AUTO_MIN_WEIGHTS:
        return False, f"off (auto: {weights} embedding weights ≤ {SPARSE_AUTO_MIN_WEIGHTS})"
    return True, "on" if setting is True else f"on (auto: {weights} embedding weights)"


def warmup_factor(warmup_steps: int):
    """LR multiplier after `step` optimizer steps: linear 0 → 1 over warmup_steps, then 1."""
    if warmup_steps <= 0:
        return lambda step: 1.0
    return lambda step: min(1.0, step / warmup_steps)


def _sparse_params(model: nn.Module) -> list[nn.Parameter]:
    return [
        p
        for m in model.modules()
        if isinstance(m, nn.Embedding) and m.sparse
        for p in m.parameters(recurse=False)
        if p.requires_grad
    ]


def make_optimizer(name: str, params: list[nn.Parameter], cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """One torch optimizer from the `training.optimizer` block."""
    lr, wd, eps, momentum = cfg.lr, cfg.weight_decay, cfg.eps, cfg.momentum
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=eps, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, eps=eps, momentum=momentum, weight_decay=wd)
    if name == "sparse_adam":
        return torch.optim.SparseAdam(params, lr=lr, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}")


@dataclass
class Optimization:
    """The optimizers of one run and their schedulers, stepped as one.

    Usually one optimizer; two when a sparse embedding needs SparseAdam next to Adam/AdamW.
    Gradient clipping applies to the dense parameters only (torch cannot take the norm of
    sparse gradients).
    """

    optimizers: list[torch.optim.Optimizer]
    dense_params: list[nn.Parameter]
    schedulers: list[torch.optim.lr_scheduler.LambdaLR] = field(default_factory=list)

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)

    def step(
        self,
        loss: torch.Tensor,
        *,
        scaler: torch.amp.GradScaler | None = None,
        clip_grad_norm: float | None = None,
    ) -> None:
        """Backward, optional clipping, optimizer and scheduler steps."""
        (scaler.scale(loss) if scaler else loss).backward()
        if clip_grad_norm:
            if scaler:
                for opt in self.optimizers:
                    scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self.dense_params, clip_grad_norm)
        for opt in self.optimizers:
            if scaler:
                scaler.step(opt)
            else:
                opt.step()
        if scaler:
            scaler.update()
        for sched in self.schedulers:
            sched.step()

    @property
    def lr(self) -> float:
        return float(self.optimizers[0].param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for opt, s in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)
        for sched, s in zip(self.schedulers, state["schedulers"], strict=True):
            sched.load_state_dict(s)


def build_optimization(model: nn.Module, training_cfg: TrainingConfig) -> Optimization:
    """Optimizers for the model's trainable parameters plus the warm-up schedule.

    Sparse embedding tables (built with sparse=True) go to the main optimizer for sgd and
    adagrad, to a separate SparseAdam for adam and adamw.
    """
    cfg = training_cfg.optimizer
    name = cfg.name
    sparse = _sparse_params(model)
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse_ids]
    if sparse and name not in SPARSE_CAPABLE:
        raise ValueError(f"optimizer {name!r} cannot update a sparse embedding; build the model dense")
    if sparse and cfg.weight_decay > 0:
        raise ValueError("weight decay cannot be applied to sparse embedding gradients")
    if sparse and name in ("adam", "adamw"):
        optimizers = [make_optimizer(name, dense, cfg)] if dense else []
        optimizers.append(make_optimizer("sparse_adam", sparse, cfg))
    else:
        optimizers = [make_optimizer(name, dense + sparse, cfg)]
    if sparse and name == "adagrad":
        # Explicit opt-out from torch's sparse invariant checks (Adagrad's sparse path warns otherwise).
        torch.sparse.check_sparse_tensor_invariants.disable()
    factor = warmup_factor(training_cfg.warmup_steps)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in optimizers]
    return Optimization(optimizers, dense, schedulers)
