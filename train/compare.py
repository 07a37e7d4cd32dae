"""The comparison's old import path: ``train.compare`` re-exports what moved to :mod:`train.experiments`.

New code imports from the modules that hold each thing (see ``train/experiments/__init__.py``);
the names here keep older scripts, notebooks and docs working.
"""

from __future__ import annotations

from pathlib import Path  # noqa: F401 (older callers build result paths with it)

from train import algorithms as _algorithms
from train.experiments import rewards as _rewards
from train.experiments.base import base_models as _base_models  # noqa: F401
from train.experiments.base import prepare_base
from train.experiments.comparison import compare, report, temperature_curve
from train.experiments.config import (
    COMPARE_PRESETS,
    DEFAULT_AGENTS,
    HPARAMS_DIR,
    PLATEAU_TOKEN_BUDGET,
    CompareConfig,
    check_hparams,
    get_compare_config,
    load_hparams,
)
from train.experiments.rewards import DEFAULT_REWARD
from train.experiments.runner import compare_trial, run_one
from train.experiments.runs import SETTINGS, control_update, job_name, split_job_name
from train.experiments.runs import result_path as _result_path
from train.experiments.runs import write_json as _write_json
from train.experiments.scoring import load_agent_factory
from train.experiments.steps import reward_spread

REINFORCE_VARIANTS: dict[str, str] = {a.name: a.settings["baseline"] for a in _algorithms.ALGORITHMS.values()
                                      if a.compare and "baseline" in a.settings}
"""The REINFORCE variants and their :attr:`ReinforceConfig.baseline` (from :data:`train.algorithms.ALGORITHMS`)."""
SB3_AGENTS = tuple(a.name for a in _algorithms.ALGORITHMS.values() if a.family == "sb3")
BUILTIN_AGENTS = _algorithms.names(compare=True)
CONTROLS = _rewards.names("control")
BASELINES = _rewards.names("control", "reference")
REWARDS = _rewards.names("axis")

__all__ = [
    "BASELINES", "BUILTIN_AGENTS", "COMPARE_PRESETS", "CONTROLS", "DEFAULT_AGENTS", "DEFAULT_REWARD", "HPARAMS_DIR",
    "PLATEAU_TOKEN_BUDGET", "REINFORCE_VARIANTS", "REWARDS", "SB3_AGENTS", "SETTINGS", "CompareConfig",
    "_result_path", "_write_json", "check_hparams", "compare", "compare_trial", "control_update",
    "get_compare_config", "job_name", "load_agent_factory", "load_hparams", "prepare_base", "report",
    "reward_spread", "run_one", "split_job_name", "temperature_curve",
]
