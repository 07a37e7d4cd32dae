"""Where reduced precision and fused kernels pay, and the helpers that apply them.

* :func:`cpu_has_native_bf16`: whether this CPU has bfloat16 matrix instructions (AMX or
  AVX-512 BF16). Only there is bfloat16 faster than float32; elsewhere it is emulated.
* :func:`training_autocast`: bfloat16 autocast for the matrix products of a training step
  (the discriminator's convolutions and highway, the generator's output layer) where the
  hardware has native bfloat16 (such a CPU, or CUDA); parameters, gradients, optimiser
  state and the losses stay float32.
* :func:`adam`: Adam with the fused single-pass update where this torch has it for the
  parameters' device (float32 CPU since torch 2.4): the same update, in one pass over
  each parameter instead of about eight. It bumps the parameters' version counters after
  each step, as the unfused update does, so caches keyed on them see the change.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable

import torch
from torch.autograd.graph import increment_version


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """AMX or AVX-512 BF16 listed in ``/proc/cpuinfo`` (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def native_bf16(device: torch.device | str) -> bool:
    """Whether bfloat16 products run on native hardware on ``device``."""
    device = torch.device(device)
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def training_autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast where :func:`native_bf16`; a no-op elsewhere or with
    ``SEQGAN_ENV_TRAIN_BF16=0``."""
    device = torch.device(device)
    if os.environ.get("SEQGAN_ENV_TRAIN_BF16", "1") == "0" or not native_bf16(device):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def adam(params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr)``, fused where this torch supports it for these parameters."""
    params = list(params)
    try:
        optimizer = torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):  # an older torch, or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr)
    # The fused kernel writes the parameters without bumping their version counters, which
    # the inference caches (D's tables, the output layer with its bias) key on: bump them.
    optimizer.register_step_post_hook(_bump_versions)
    return optimizer


def parameter_versions(module: torch.nn.Module) -> tuple:
    """Identity and version counter of every parameter of ``module``: changes whenever a
    parameter is replaced or updated in place (what the inference caches key on)."""
    params = list(module.parameters())
    return tuple(id(p) for p in params) + tuple(p._version for p in params)


def _bump_versions(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
    for group in optimizer.param_groups:
        for param in group["params"]:
            increment_version(param)
