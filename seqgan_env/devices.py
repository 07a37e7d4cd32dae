"""Devices: one place that turns what a user typed into a torch device, and the helpers
that keep models and random generators on it without touching the caller's objects.

Every layer that takes a ``device`` argument (``make``/``make_vec``, the reward models,
``load_model``, ``seqgan train --device``) goes through :func:`resolve_device`, so asking for
a GPU that is not there fails at once with a message that says so, instead of torch's bare
``AssertionError`` from deep inside the first tensor operation.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def _why_no_cuda() -> str:
    if torch.version.cuda is None:
        return "this torch is a CPU build"
    return f"this torch was built for CUDA {torch.version.cuda}, but it sees no GPU"


def resolve_device(device: str | torch.device | None, argument: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device`, checked to exist on this machine.

    ``None`` means the CPU. A CUDA device without an index means the current one
    (``cuda:0`` unless changed), so devices compare equal to ``tensor.device``.

    Raises:
        ValueError: naming ``argument`` when the string is not a device, or when CUDA (or
            MPS) is asked for and this torch or machine has none.
    """
    if device is None:
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{argument}={device!r} is not a torch device: {exc}") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{argument}={device!r} was asked for but torch.cuda.is_available() is False "
                f"({_why_no_cuda()}); use {argument}='cpu'"
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if resolved.index is None else resolved.index
        if not 0 <= index < count:
            raise ValueError(f"{argument}={device!r}: this machine has {count} CUDA device(s), 0 to {count - 1}")
        return torch.device("cuda", index)
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{argument}={device!r} was asked for but torch.backends.mps.is_available() is False")
    return resolved


def module_device(module: nn.Module) -> torch.device:
    """Where ``module``'s parameters (or buffers) are; the CPU for a module without any."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def module_on(module: ModuleT, device: torch.device) -> ModuleT:
    """``module`` itself when it is on ``device`` already, else a copy moved there.

    ``nn.Module.to`` moves a module in place; a copy leaves the caller's model where the
    caller put it (training it on one device while the env scores on another is allowed).
    """
    if all(t.device == device for t in (*module.parameters(), *module.buffers())):
        return module
    return copy.deepcopy(module).to(device)


def generator_on(rng: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """A random generator that can draw tensors on ``device``.

    ``rng`` itself when it lives there; otherwise a new generator on ``device`` seeded by
    one draw from ``rng``, so a CPU generator drives sampling on a GPU reproducibly. ``None``
    stays ``None`` (torch's global generator of that device).
    """
    if rng is None or rng.device.type == device.type and (device.type != "cuda" or rng.device == device):
        return rng
    seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    return torch.Generator(device=device).manual_seed(seed)
