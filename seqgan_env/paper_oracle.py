"""The SeqGAN paper's oracle: fetched from its public source, checked, converted to ``.npz``.

The original experiment's oracle LSTM (Yu et al., 2017) is the pickle
``save/target_params_py3.pkl`` of the LantaoYu/SeqGAN repository. That repository states no
licence, so this project does not ship the parameters: :func:`fetch` downloads the file at a
pinned commit, checks its SHA-256, reads it with the restricted unpickler (only NumPy arrays;
:class:`seqgan_env.models.oracle.ArrayUnpickler`) and writes the named-array ``.npz`` that every
command reads as ``oracle="paper"`` (``--oracle paper``).

Where the ``.npz`` goes (:func:`default_path`): ``$SEQGAN_ENV_DATA/seqgan_paper_oracle.npz`` when
that variable is set, else ``$XDG_CACHE_HOME/seqgan-env/`` (``~/.cache/seqgan-env/`` by default).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from seqgan_env.models.oracle import Oracle

COMMIT = "aa79a6fff1c4127fd8d0e92df8b647cf48b30787"
"""The commit of LantaoYu/SeqGAN that added the pickle (unchanged at its latest commit)."""
URL = f"https://raw.githubusercontent.com/LantaoYu/SeqGAN/{COMMIT}/save/target_params_py3.pkl"
SHA256 = "5ac794a695dd6e0eb2bb689f3dfda55e4e0053e8c0399e6242630a95f1e60e8a"
SIZE = 1_334_000
"""Bytes of the pickle at :data:`COMMIT`."""
FILE_NAME = "seqgan_paper_oracle.npz"
ENV_VAR = "SEQGAN_ENV_DATA"
NAME = "paper"
"""What ``oracle=`` / ``--oracle`` takes for the fetched file at :func:`default_path`."""


class OracleFetchError(RuntimeError):
    """The paper's oracle could not be downloaded, or the file is not the pinned one."""


def data_dir() -> Path:
    """``$SEQGAN_ENV_DATA``, else ``$XDG_CACHE_HOME/seqgan-env`` (``~/.cache/seqgan-env``)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "seqgan-env"


def default_path() -> Path:
    """Where :func:`fetch` writes the ``.npz`` and where ``oracle="paper"`` reads it."""
    return data_dir() / FILE_NAME


def instructions(path: Path | None = None) -> str:
    """What to do by hand when the file cannot be fetched here."""
    target = path or default_path()
    return (f"download {URL}\n(SHA-256 {SHA256}, {SIZE:,} bytes; the SeqGAN repository states no licence, so "
            f"seqgan-env does not ship it) and convert it with\n"
            f"    seqgan oracle fetch --from target_params_py3.pkl\n"
            f"which writes {target} (set {ENV_VAR}=FOLDER to put it elsewhere)")


def resolve(path: str | Path) -> Path:
    """``path``, or for ``"paper"`` the fetched file, with a message saying how to fetch it if absent."""
    if str(path) != NAME:
        return Path(path)
    target = default_path()
    if not target.is_file():
        raise FileNotFoundError(f"the paper's oracle is not at {target}: run `seqgan oracle fetch` "
                                f"(it downloads and converts it), or {instructions(target)}")
    return target


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, timeout: float = 60.0) -> None:
    """Copy ``url`` into ``target`` (any network error propagates)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
        for block in iter(lambda: response.read(1 << 16), b""):
            out.write(block)


def convert(pickle_path: str | Path, out: str | Path | None = None, expected_sha256: str | None = None) -> Path:
    """Check ``pickle_path``'s SHA-256 against ``expected_sha256`` (default :data:`SHA256`), read it
    without running code, and write the named-array ``.npz`` to ``out`` (default
    :func:`default_path`), atomically."""
    pickle_path = Path(pickle_path)
    if not pickle_path.is_file():
        raise FileNotFoundError(f"{pickle_path}: no such file")
    expected = expected_sha256 or SHA256
    found = sha256(pickle_path)
    if found != expected:
        raise OracleFetchError(f"{pickle_path}: SHA-256 {found}, expected {expected}: not the paper's "
                               f"oracle at commit {COMMIT[:12]} (a different or damaged file); nothing written")
    oracle = Oracle.load(pickle_path)  # the restricted reader: NumPy arrays only
    target = Path(out) if out is not None else default_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".npz", delete=False) as handle:
        temporary = Path(handle.name)
    try:
        oracle.save_npz(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def fetch(out: str | Path | None = None, source: str | Path | None = None,
          downloader: Callable[[str, Path], None] | None = None) -> Path:
    """The paper's oracle as an ``.npz`` at ``out`` (default :func:`default_path`): converted from
    ``source`` (an already downloaded pickle) or downloaded from :data:`URL`. Offline, an
    :class:`OracleFetchError` says what to download and where to put it."""
    target = Path(out) if out is not None else default_path()
    if source is not None:
        return convert(source, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        pickle_path = Path(folder) / "target_params_py3.pkl"
        try:
            (downloader or download)(URL, pickle_path)
        except OSError as exc:  # URLError, timeouts and refused connections are OSErrors
            raise OracleFetchError(f"could not download the paper's oracle ({exc}). Without network access, "
                                   f"{instructions(target)}") from exc
        return convert(pickle_path, target)
