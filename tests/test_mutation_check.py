"""``scripts/mutation_check.py``: every mutant still applies to today's code (the suite says so
at once, not the next mutation run), and a run's record carries what a results file must."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("mutation_check", REPO / "scripts" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mutation_check", module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mutant", _script().MUTANTS, ids=lambda m: m.name)
def test_every_mutant_edits_a_string_found_exactly_once(mutant):
    for file, original, replacement in mutant.edits:
        assert original != replacement, (mutant.name, file)
        count = (REPO / file).read_text().count(original)
        assert count == 1, f"{mutant.name}: {original!r} occurs {count} times in {file}; update the mutant"
    assert (REPO / mutant.tests[0]).is_file(), mutant.tests


def test_the_ci_subset_holds_the_new_guarantees_and_a_record_names_the_code_version(tmp_path):
    script = _script()
    fast = {m.name for m in script.MUTANTS if m.fast}
    assert {"kl-penalty-sign", "rloo-baseline-includes-itself", "grpo-not-normalised", "d-star-ratio-inverted",
            "best-of-n-keeps-the-worst", "checkpoint-not-atomic"} <= fast
    path = tmp_path / "mutation.json"
    script.record(path, ["--ci"], [{"name": "x", "outcome": "killed", "seconds": 1.0}], started=0.0)
    saved = json.loads(path.read_text())
    assert saved["command"] == "python scripts/mutation_check.py --ci" and saved["data"]["killed"] == 1
    assert saved["code_version"] == "unknown" or len(saved["code_version"].split("+")[0]) == 40
    assert saved["date"] and saved["data"]["mutants"][0]["name"] == "x"
