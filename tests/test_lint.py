"""``ruff check`` (configured in pyproject.toml) passes on the whole repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def ruff_command() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed (it is in the dev extra: pip install -e '.[dev]')")


def test_ruff_check_passes():
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_what_it_is_configured_to_find(tmp_path):
    """The configuration is read and its rules fire (a check that passes on an empty rule set proves nothing)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport sys, json\n\n\ndef f(x=[]):\n    return x\n")
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"),
                             str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    for rule in ("F401", "E401", "B006"):
        assert rule in result.stdout, (rule, result.stdout)
