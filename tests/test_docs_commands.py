"""Every command in the ```bash blocks of README.md, CONTRIBUTING.md and docs/*.md runs as written.

Each command line is split at ``&&``. A ``seqgan`` command is parsed by the real parser
(option names, choices and types as typed); every distinct entry point (``seqgan train``,
``python -m benchmarks.paper_table``, ``python scripts/....py``, ...) is then started once
with ``--help`` in a subprocess, all of them at the same time: the whole runs would take
minutes to hours. What is not run at all is listed in :data:`NOT_RUN` with the reason.
``.venv/bin/python`` is this interpreter, ``seqgan`` the console script beside it. Scripts
and modules run without ``PYTHONPATH``, as typed in a shell at the repository's root.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from train.cli import build_parser

DOCUMENTS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]

NOT_RUN = {
    "python3.11 -m venv": "creates the virtual environment the tests already run in",
    ".venv/bin/pip install": "installs packages: network access and minutes",
    "pip install": "installs packages: network access and minutes",
    "mkdir -p": "shell set-up for the next command, nothing of this project's",
    "git archive": "unpacks an older commit to compare against (git's own command)",
    "ray start": "starts a long-lived Ray node (a service, Ray's own command); tests/test_tune.py covers --address",
}
"""Command prefixes that are not run, and why."""

PYTHONS = {"python", "python3", "python3.11", ".venv/bin/python"}
SEQGANS = {"seqgan", ".venv/bin/seqgan"}


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv)`` for every command in a ```bash block; ``[optional]`` brackets dropped."""
    commands = []
    for document in DOCUMENTS:
        text = document.read_text()
        for block in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            first_line = text.count("\n", 0, block.start()) + 2
            for offset, line in enumerate(block.group(1).splitlines()):
                for part in line.split("&&"):
                    # "[" or "]" alone is dropped; an empty argument the shell would pass ('') stays
                    argv = [token.strip("[]") for token in shlex.split(part, comments=True)
                            if token.strip("[]") or not token]
                    if argv:
                        commands.append((f"{document.name}:{first_line + offset}", argv))
    return commands


def skipped_reason(argv: list[str]) -> str | None:
    line = " ".join(argv)
    return next((reason for prefix, reason in NOT_RUN.items() if line.startswith(prefix)), None)


def entry_point(argv: list[str]) -> tuple[str, ...]:
    """What a command starts: ``("seqgan", sub)``, ``("-m", module)`` or ``("file", path)``."""
    if argv[0] in SEQGANS:
        return ("seqgan", argv[1]) if len(argv) > 1 else ("seqgan",)
    if argv[0] in PYTHONS and len(argv) > 2 and argv[1] == "-m":
        return ("-m", argv[2])
    if argv[0] in PYTHONS and len(argv) > 1 and argv[1].endswith(".py"):
        return ("file", argv[1])
    raise AssertionError(f"{' '.join(argv)!r}: not a seqgan or python command; run it here or list it in NOT_RUN")


def help_command(entry: tuple[str, ...]) -> list[str]:
    if entry[0] == "seqgan":
        script = Path(sys.executable).with_name("seqgan")  # the console script pip installed
        start = [str(script)] if script.is_file() else [sys.executable, "-m", "train.cli"]
        return [*start, *entry[1:], "--help"]
    if entry[0] == "-m":
        return [sys.executable, "-m", entry[1], "--help"]
    return [sys.executable, entry[1], "--help"]


COMMANDS = documented_commands()


def test_the_documents_have_commands():
    assert len(COMMANDS) >= 20, COMMANDS  # the README alone has more; a broken extraction finds none
    assert any(argv[:2] == ["seqgan", "compare"] for _, argv in COMMANDS)


@pytest.mark.parametrize("where, argv", [c for c in COMMANDS if c[1][0] in SEQGANS], ids=lambda x: str(x))
def test_seqgan_commands_parse_as_written(where, argv):
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{where}: {' '.join(argv)!r} is refused by the argument parser (exit {exc.code})")


def test_every_entry_point_starts():
    entries: dict[tuple[str, ...], str] = {}
    for where, argv in COMMANDS:
        if skipped_reason(argv) is None:
            entry = entry_point(argv)
            if entry[0] == "file":
                assert (REPO / entry[1]).is_file(), f"{where}: {entry[1]} does not exist"
            entries.setdefault(entry, where)
    # As a user runs them from the repository: a script or module finds only what is installed
    # (and, for -m, the working directory), so no PYTHONPATH that would hide a missing import.
    # The console script gets this checkout's code first, which is what is installed in CI.
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    envs = {"seqgan": dict(plain, PYTHONPATH=str(REPO)), "-m": plain, "file": plain}
    running = {entry: subprocess.Popen(help_command(entry), cwd=REPO, env=dict(envs[entry[0]], OMP_NUM_THREADS="1"),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for entry in entries}
    failures = []
    for entry, process in running.items():
        output, _ = process.communicate(timeout=120)
        if process.returncode != 0 or "usage" not in output.lower():
            failures.append(f"{entries[entry]}: {' '.join(help_command(entry))} -> exit {process.returncode}\n"
                            f"{output[-1500:]}")
    assert not failures, "\n\n".join(failures)
