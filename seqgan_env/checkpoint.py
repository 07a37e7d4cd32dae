"""Saving and loading models and training state: atomic writes, clear errors.

Every file written here is a ``torch.save`` dict with a ``format`` tag and a ``kind``. Files
are written to a temporary name in the same folder and renamed into place, so a crash never
leaves a half-written checkpoint behind. Loading checks the tag, the kind and the tensor
shapes, and raises :class:`CheckpointError` naming what is wrong.
"""

from __future__ import annotations

import os
import random
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "seqgan-env/1"
"""Tag stored in every checkpoint this project writes."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or not what was asked for."""


def atomic_save(payload: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to ``path`` durably: a temporary file, fsynced, renamed into place, folder fsynced.

    After a crash or power cut ``path`` holds either the old file or the whole new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL on a random name, mode 0o666: the kernel applies the umask, as for any new file,
    # without changing the process-wide umask (which other threads may be relying on).
    temp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(handle, "wb") as out:
            torch.save(payload, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)  # the rename itself lives in the folder's entries
    return path


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder to flush it; NTFS journals renames
        return
    handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by this project, checking its format and kind."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for truncated or foreign files
        refused = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line]
        if refused:  # torch's restricted unpickler met a pickled object (its advice, weights_only=False, is
            # exactly what must not be done here, so only its line naming the object is kept)
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds pickled Python objects, not only tensors and plain data; it is "
                f"refused unread, since unpickling them could run code (weights_only loading: {refused[0]})"
            ) from exc
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a torch file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a seqgan-env checkpoint (no {FORMAT!r} tag)")
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{str(path)!r} holds a {payload.get('kind')!r}, expected a {kind!r}")
    return payload


def model_payload(model: nn.Module, kind: str, **extra: Any) -> dict[str, Any]:
    """The dict that :func:`save_model` writes: constructor arguments and weights."""
    config = model.config_dict()
    return {"format": FORMAT, "kind": kind, "config": config,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}


def save_model(model: nn.Module, path: str | Path, **extra: Any) -> Path:
    """Save a Generator, Oracle, Discriminator or PrefixDiscriminator atomically."""
    return atomic_save(model_payload(model, model_kind(model), **extra), path)


def model_kind(model: nn.Module) -> str:
    from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator

    for cls, name in ((Oracle, "oracle"), (Generator, "generator"), (Discriminator, "discriminator"),
                      (PrefixDiscriminator, "prefix-discriminator")):
        if isinstance(model, cls):
            return name
    raise TypeError(f"cannot save a {type(model).__name__}: not a Generator, Oracle, Discriminator or "
                    "PrefixDiscriminator")


def model_from_payload(payload: dict[str, Any], source: str = "checkpoint") -> nn.Module:
    """Rebuild a model from :func:`model_payload`'s dict, checking every tensor's shape."""
    from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
    from seqgan_env.presets import DiscriminatorConfig

    kind = payload.get("kind")
    config = dict(payload.get("config") or {})
    try:
        if kind == "generator":
            model: nn.Module = Generator(**config)
        elif kind == "oracle":
            model = Oracle(**config, seed=None)
        elif kind == "discriminator":
            disc = DiscriminatorConfig(
                embedding_dim=config.pop("embedding_dim"), filter_sizes=tuple(config.pop("filter_sizes")),
                num_filters=tuple(config.pop("num_filters")), dropout_keep=config.pop("dropout_keep"),
                l2_reg=config.pop("l2_reg"),
            )
            model = Discriminator(config=disc, **config)
        elif kind == "prefix-discriminator":
            model = PrefixDiscriminator(**config)
        else:
            raise CheckpointError(f"{source}: unknown model kind {kind!r}")
    except (TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{source}: bad model configuration {payload.get('config')!r}: {exc}") from exc
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: no state_dict")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: weights do not match a {kind}: missing {missing}, unexpected {unexpected}")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: weight {name!r} has shape {tuple(state[name].shape)}, expected {tuple(tensor.shape)}"
            )
    model.load_state_dict(state)
    if kind == "oracle":
        model.requires_grad_(False)
    return model


def load_model(path: str | Path, kind: str | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Load a model saved by :func:`save_model` (optionally insisting on its kind)."""
    payload = load_checkpoint(path, None)
    if kind is not None and payload.get("kind") != kind:
        raise CheckpointError(f"{str(path)!r} holds a {payload.get('kind')!r}, expected a {kind!r}")
    from seqgan_env.devices import resolve_device

    return model_from_payload(payload, str(path)).to(resolve_device(device))


def global_rng_state() -> dict[str, Any]:
    """The process-wide random states (torch, NumPy's legacy global, Python's ``random``) as plain data.

    Libraries such as SB3 draw from these (action sampling, minibatch order), so a run that
    must continue exactly after a resume saves them with its checkpoint.
    """
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`global_rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
