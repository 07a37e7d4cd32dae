"""The oracle: the frozen LSTM whose samples are the synthetic benchmark's real data, and the
readers of its files (the paper's original pickle, read without running code, and ``.npz``)."""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan_env.models.lstm import TokenLSTM

try:  # NumPy 2 moved its internals to numpy._core; pickles name either location
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # NumPy 1
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how protocols 0-2 spell bytes under Python 3
}
for _module in ("numpy.core", "numpy._core"):
    _PICKLE_GLOBALS[(f"{_module}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    if hasattr(_numeric, "_frombuffer"):  # protocol 5's array constructor
        _PICKLE_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = _numeric._frombuffer


class ForbiddenPickleError(ValueError):
    """A pickle names something other than NumPy's array constructors: it is refused unread."""


class ArrayUnpickler(pickle.Unpickler):
    """Reads pickles of lists, tuples and dicts of NumPy arrays, and nothing else.

    A pickle is a program: every global it names is imported and may be called. This
    unpickler admits only the handful of NumPy functions that rebuild an array (and the
    codec that older protocols use for bytes), so a crafted file cannot run a command;
    any other global raises :class:`ForbiddenPickleError` naming it, before it is called.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenPickleError(
                f"the pickle asks for {module}.{name}, which an oracle file never needs (it may run code); "
                "only NumPy arrays are read from pickles"
            ) from None


ORACLE_ARRAY_NAMES: tuple[str, ...] = (
    "embedding", "W_i", "U_i", "b_i", "W_f", "U_f", "b_f",
    "W_o", "U_o", "b_o", "W_c", "U_c", "b_c", "W_out", "b_out",
)
"""Names (and, for the original pickle, the order) of the oracle's 15 arrays."""


class Oracle(TokenLSTM):
    """The synthetic-data oracle: a frozen LSTM with N(0, 1) parameters.

    Its samples are the "real" data and its NLL of a generator's samples is the paper's
    NLL-oracle metric. Build one from a seed, or load the original experiment's parameters
    with :meth:`load` (``.npz`` with named arrays, or the original code's pickle).
    """

    def __init__(self, vocab_size: int = 5000, embedding_dim: int = 32, hidden_dim: int = 32,
                 seq_len: int = 20, start_token: int = 0, seed: int | None = 88) -> None:
        super().__init__(vocab_size, embedding_dim, hidden_dim, seq_len, start_token, init_std=1.0)
        if seed is not None:
            gen = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for param in self.parameters():
                    param.copy_(torch.randn(param.shape, generator=gen))
                self.lstm.bias_hh_l0.zero_()
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_preset(cls, preset: Any) -> Oracle:
        return cls(preset.vocab_size, preset.oracle_embedding_dim, preset.oracle_hidden_dim,
                   preset.seq_len, preset.start_token, seed=preset.oracle_seed)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], seq_len: int = 20,
                    start_token: int = 0, source: str = "arrays") -> Oracle:
        """Build from the 15 named arrays of :data:`ORACLE_ARRAY_NAMES` (the paper's oracle's layout).

        Raises ``ValueError`` naming the missing array or the wrong shape.
        """
        missing = [name for name in ORACLE_ARRAY_NAMES if name not in arrays]
        if missing:
            raise ValueError(f"{source}: oracle is missing arrays {missing}")
        arr = {name: np.asarray(arrays[name]) for name in ORACLE_ARRAY_NAMES}
        for name, value in arr.items():
            if not np.issubdtype(value.dtype, np.floating):
                raise ValueError(f"{source}: oracle array {name!r} has dtype {value.dtype}, expected floats")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{source}: oracle array {name!r} holds NaN or infinite values")
        if arr["embedding"].ndim != 2:
            raise ValueError(f"{source}: oracle 'embedding' must be 2-D (vocab, emb), got shape {arr['embedding'].shape}")
        vocab, emb = arr["embedding"].shape
        hidden = arr["U_i"].shape[0] if arr["U_i"].ndim == 2 else -1
        expected = {"embedding": (vocab, emb), "W_out": (hidden, vocab), "b_out": (vocab,)}
        for gate in "ifoc":
            expected[f"W_{gate}"] = (emb, hidden)
            expected[f"U_{gate}"] = (hidden, hidden)
            expected[f"b_{gate}"] = (hidden,)
        for name, shape in expected.items():
            if arr[name].shape != shape:
                raise ValueError(
                    f"{source}: oracle array {name!r} has shape {arr[name].shape}, expected {shape} "
                    f"(vocab={vocab}, embedding={emb}, hidden={hidden} read from 'embedding' and 'U_i')"
                )
        oracle = cls(vocab, emb, hidden, seq_len, start_token, seed=None)
        t = {name: torch.as_tensor(value, dtype=torch.float32) for name, value in arr.items()}
        # torch's gate order is (i, f, g, o) and its weights multiply column vectors.
        with torch.no_grad():
            oracle.embedding.weight.copy_(t["embedding"])
            oracle.lstm.weight_ih_l0.copy_(torch.cat([t["W_i"], t["W_f"], t["W_c"], t["W_o"]], 1).T)
            oracle.lstm.weight_hh_l0.copy_(torch.cat([t["U_i"], t["U_f"], t["U_c"], t["U_o"]], 1).T)
            oracle.lstm.bias_ih_l0.copy_(torch.cat([t["b_i"], t["b_f"], t["b_c"], t["b_o"]]))
            oracle.lstm.bias_hh_l0.zero_()
            oracle.output.weight.copy_(t["W_out"].T)
            oracle.output.bias.copy_(t["b_out"])
        return oracle

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The 15 named arrays (inverse of :meth:`from_arrays`)."""
        h = self.hidden_dim
        w_ih = self.lstm.weight_ih_l0.detach().T.numpy()
        w_hh = self.lstm.weight_hh_l0.detach().T.numpy()
        bias = (self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0).detach().numpy()
        out: dict[str, np.ndarray] = {"embedding": self.embedding.weight.detach().numpy()}
        for index, gate in enumerate("ifco"):
            out[f"W_{gate}"] = w_ih[:, index * h : (index + 1) * h]
            out[f"U_{gate}"] = w_hh[:, index * h : (index + 1) * h]
            out[f"b_{gate}"] = bias[index * h : (index + 1) * h]
        out["W_out"] = self.output.weight.detach().T.numpy()
        out["b_out"] = self.output.bias.detach().numpy()
        return {name: np.ascontiguousarray(out[name], dtype=np.float32) for name in ORACLE_ARRAY_NAMES}

    @classmethod
    def load(cls, path: str | Path, seq_len: int = 20, start_token: int = 0) -> Oracle:
        """Load an ``.npz`` (named arrays) or the original code's pickle (a list of 15 arrays)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"oracle file {str(path)!r} does not exist")
        with path.open("rb") as handle:
            magic = handle.read(4)
        if magic.startswith(b"PK"):  # .npz files are zip archives
            try:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {name: data[name] for name in data.files}
            except Exception as exc:  # zipfile/pickle errors vary; say what was being read
                raise ValueError(f"{path}: cannot read the oracle .npz ({exc})") from exc
        else:
            try:
                with path.open("rb") as handle:
                    obj = ArrayUnpickler(handle, encoding="latin1").load()
            except ForbiddenPickleError as exc:
                raise ForbiddenPickleError(f"{path}: {exc}") from None
            except Exception as exc:
                raise ValueError(
                    f"{path}: not an oracle file: neither an .npz archive nor a readable pickle ({exc})"
                ) from exc
            if isinstance(obj, dict):
                arrays = obj
            elif isinstance(obj, (list, tuple)):
                if len(obj) != len(ORACLE_ARRAY_NAMES):
                    raise ValueError(
                        f"{path}: the oracle pickle holds {len(obj)} arrays, expected "
                        f"{len(ORACLE_ARRAY_NAMES)} in the order {list(ORACLE_ARRAY_NAMES)}"
                    )
                arrays = dict(zip(ORACLE_ARRAY_NAMES, obj))
            else:
                raise ValueError(f"{path}: the pickle holds a {type(obj).__name__}, expected a list of 15 arrays")
        return cls.from_arrays(arrays, seq_len=seq_len, start_token=start_token, source=str(path))

    def save_npz(self, path: str | Path) -> None:
        """Write the named-array ``.npz`` format."""
        np.savez(path, **self.to_arrays())
