"""What a trial needs, carried to it through Ray's object store: nothing by path.

The nodes of a Ray cluster share no disk by default (clusters of Ray's cluster launcher or
KubeRay), so a trial cannot read the comparison's folder. The driver packs the base (the MLE
generator, the training run's real and test data, every pretrained D) and the oracle's file as
raw bytes (:func:`pack_inputs`); Tune hands them to every trial through the object store
(``tune.with_parameters``); the trial writes them into a private temporary folder of its own
node (:func:`unpacked`) and loads them as any file of ours: tensors through
``torch.load(weights_only=True)``, an oracle through NumPy without pickles. What a trial finds
goes back as Tune results, and the driver alone writes the results folder.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seqgan_env import paper_oracle

BASE_SUFFIX = ".pt"


def pack_inputs(base: Path, oracle_spec: str | None) -> dict[str, Any]:
    """The base's model and data files (``base/*.pt``) and the oracle's file, as bytes.

    ``oracle_spec`` that names a file (or ``paper``, the file ``seqgan oracle fetch`` wrote) is shipped
    as its bytes (with its suffix, which says its format); any other spec (``None``, ``builtin``, a seed) is rebuilt by the trial from the preset.
    """
    files = {path.name: path.read_bytes() for path in sorted(base.glob(f"*{BASE_SUFFIX}")) if path.is_file()}
    if "generator.pt" not in files:
        raise FileNotFoundError(f"{base} holds no generator.pt: the comparison's base was not prepared")
    oracle_file = None
    if oracle_spec == paper_oracle.NAME:  # the fetched file of this node: its bytes travel, not the name
        oracle_spec = str(paper_oracle.resolve(oracle_spec))
    if oracle_spec is not None and Path(oracle_spec).is_file():
        oracle_file = {"suffix": Path(oracle_spec).suffix, "data": Path(oracle_spec).read_bytes()}
    return {"base": files, "oracle_file": oracle_file, "oracle": None if oracle_file else oracle_spec}


def _plain_name(name: str) -> str:
    """A file name the driver packed (no folder parts, so a payload cannot write outside the trial's folder)."""
    if Path(name).name != name or name in ("", ".", "..") or not name.endswith(BASE_SUFFIX):
        raise ValueError(f"a trial's inputs hold an unexpected file name {name!r}")
    return name


@contextlib.contextmanager
def unpacked(inputs: dict[str, Any]) -> Iterator[tuple[Path, str | None]]:
    """The packed inputs as files in a temporary folder of this node: ``(folder, oracle_spec)``.

    ``folder/base`` is the base as :func:`train.experiments.base.base_models` reads it; the
    folder is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="seqgan-trial-") as temp:
        folder = Path(temp)
        base = folder / "base"
        base.mkdir()
        for name, data in inputs["base"].items():
            (base / _plain_name(name)).write_bytes(data)
        oracle = inputs.get("oracle")
        if inputs.get("oracle_file"):
            suffix = inputs["oracle_file"]["suffix"]
            if not suffix.replace(".", "").isalnum():
                raise ValueError(f"a trial's inputs hold an oracle file of unexpected suffix {suffix!r}")
            path = folder / f"oracle{suffix}"
            path.write_bytes(inputs["oracle_file"]["data"])
            oracle = str(path)
        yield folder, oracle
