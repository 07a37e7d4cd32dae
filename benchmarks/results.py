"""Result files: every figure the README and the docs publish lives in ``results/<study>/<name>.json``.

A file is one JSON object: what made it (``command``, ``code_version``: the git commit, ``date``,
``machine_rates``: dense matmul GFLOP/s of the machine, ``provenance``) and ``data``, the
numbers the pages' tables need, trimmed from what the run or benchmark wrote. A benchmark that
publishes a figure calls :func:`write_result` at its end, so rerunning it replaces the file;
``python -m benchmarks.render_docs`` then rewrites the pages from the files.

``provenance`` is ``measured`` (written by the benchmark itself) or ``transcribed``: figures
from a study whose raw output was not kept, copied from the page of the code version that
published them (``code_version`` is that commit, ``transcribed_from`` says where).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PROVENANCES = ("measured", "transcribed")
REQUIRED = ("study", "provenance", "command", "code_version", "date", "machine_rates", "data")
"""Keys every result file has (``machine_rates`` may be null for a transcribed figure whose rates
were not published)."""


def code_version() -> str:
    """The checkout's commit, with ``+changes`` when tracked files differ from it (or ``unknown``)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def rates_before_and_after(before: dict[str, float], after: dict[str, float], threads: int) -> dict[str, Any]:
    """``machine_rates`` of a run measured at its start and its end (``{"float32": [before, after], ...}``)."""
    return {**{dtype: [before[dtype], after[dtype]] for dtype in before}, "threads": threads}


def result_path(study: str, name: str, root: Path = RESULTS) -> Path:
    return root / study / f"{name}.json"


def write_result(study: str, name: str, data: dict[str, Any], *, machine_rates: dict[str, Any] | None,
                 command: str | None = None, root: Path = RESULTS, **extra: Any) -> Path:
    """Write ``results/<study>/<name>.json`` (atomically), replacing an earlier one: a measured result.

    ``command`` defaults to this process's command line; ``extra`` adds keys (a ``note``)."""
    payload = {
        "study": study,
        "provenance": "measured",
        "command": command or " ".join(["python", *_argv()]),
        "code_version": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine_rates": machine_rates,
        **extra,
        "data": data,
    }
    path = result_path(study, name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(payload, handle, indent=1, sort_keys=False)
        handle.write("\n")
    os.chmod(handle.name, 0o644)  # a temporary file is private; a result file is for everyone to read
    os.replace(handle.name, path)
    print(f"result file: {path}")
    return path


def _argv() -> list[str]:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m package.module
        return ["-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    return sys.argv


def load_result(study: str, name: str, root: Path = RESULTS) -> dict[str, Any]:
    """One result file, checked for the keys every file has."""
    path = result_path(study, name, root)
    result = json.loads(path.read_text(encoding="utf-8"))
    missing = [key for key in REQUIRED if key not in result]
    if missing:
        raise ValueError(f"{path}: a result file needs {', '.join(missing)}")
    if result["provenance"] not in PROVENANCES:
        raise ValueError(f"{path}: provenance must be one of {PROVENANCES}, got {result['provenance']!r}")
    if result["provenance"] == "transcribed" and not result.get("transcribed_from"):
        raise ValueError(f"{path}: a transcribed result says where it was transcribed from (transcribed_from)")
    return result


def load_all(root: Path = RESULTS) -> dict[str, dict[str, dict[str, Any]]]:
    """Every result file: ``{study: {name: result}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(root.glob("*/*.json")):
        out.setdefault(path.parent.name, {})[path.stem] = load_result(path.parent.name, path.stem, root)
    return out
