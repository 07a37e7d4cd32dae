"""One run of a comparison: what it is (:class:`RunSpec`), its one name, folder and label.

A run is a setting (``fixed``, ``adversarial`` or ``baseline``), an algorithm
(:data:`train.algorithms.ALGORITHMS`), a reward (:data:`train.experiments.rewards.COMPARISON_REWARDS`)
and a seed. Its name, kept as comparisons have always written it (result folders, Tune's
trials, ``failures.json``), is made and read here only:

* ``fixed``/``adversarial``: the algorithm, with `` @ <reward>`` for rewards other than the
  paper's (``reinforce-mean @ dense``);
* ``baseline``: a control is ``<reward>/<algorithm>`` (``constant/reinforce-mean``; plain
  ``constant`` in older comparisons, which ran the paper's update), a reference baseline its
  reward alone (``oracle``).

Each run writes ``runs/<setting>/<slug>/seed<k>.json``; the paper REINFORCE's controls keep
the folder of the plain ``constant`` / ``random`` of older comparisons, which they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.algorithms import get_algorithm
from train.experiments.rewards import DEFAULT_REWARD, FORM_SEPARATOR, ComparisonReward, get_comparison_reward, names

SETTINGS = ("fixed", "adversarial")
"""``fixed``: D frozen, a stationary reward; ``adversarial``: D retrained after every generator update."""
PAPER_UPDATE = "reinforce"
"""The update a control named by its reward alone (older comparisons) ran under."""

Job = tuple[str, str, int]
"""``(setting, name, seed)``: a run as Tune's trials and the result files carry it."""


@dataclass(frozen=True)
class RunSpec:
    """One run: setting, algorithm, reward and seed."""

    setting: str
    algorithm: str
    reward: str
    seed: int

    @property
    def reward_entry(self) -> ComparisonReward:
        return get_comparison_reward(self.reward)

    @property
    def control(self) -> bool:
        """Whether the run is a control (a reward that carries no information)."""
        return self.setting == "baseline" and self.reward_entry.role == "control"

    @property
    def name(self) -> str:
        """The run's name within its setting (see the module's docstring)."""
        if self.setting != "baseline":
            return self.algorithm if self.reward == DEFAULT_REWARD else f"{self.algorithm} @ {self.reward}"
        return f"{self.reward}/{self.algorithm}" if self.control else self.reward

    @property
    def job(self) -> Job:
        return (self.setting, self.name, self.seed)

    @property
    def key(self) -> str:
        """``setting/name/seed<k>``: how ``failures.json`` names the run."""
        return f"{self.setting}/{self.name}/seed{self.seed}"

    @property
    def slug(self) -> str:
        """The name as one folder name: ``reinforce-mean @ dense`` -> ``reinforce-mean@dense``, ``a:b`` -> ``a_b``;
        the paper update's controls keep the older comparisons' plain ``constant``."""
        name = self.reward if self.control and self.algorithm == PAPER_UPDATE else self.name
        return name.replace(" @ ", "@").replace(":", "_").replace("/", "_")

    def result_path(self, root: Path) -> Path:
        return Path(root) / "runs" / self.setting / self.slug / f"seed{self.seed}.json"

    @property
    def trial_name(self) -> str:
        return f"{self.setting}_{self.slug}_seed{self.seed}"

    @property
    def label(self) -> str:
        """The table's label: the name, or what a baseline's reward is (and the update it runs under)."""
        if self.setting != "baseline":
            return self.name
        update = "REINFORCE" if self.algorithm in (PAPER_UPDATE, self.reward_entry.update) else self.algorithm
        return f"{update}, {self.reward_entry.label}"

    @classmethod
    def from_job(cls, job: Job | list[Any]) -> RunSpec:
        """The run of ``(setting, name, seed)``, its names checked (a ``ValueError`` names a bad one)."""
        setting, name, seed = job
        if setting == "baseline":
            kind, _, update = name.partition("/")
            if kind not in names("control", "reference") and ":" not in kind:
                raise ValueError(f"unknown baseline {kind!r}; choose from {list(names('control', 'reference'))}")
            entry = get_comparison_reward(kind)
            if entry.role == "control":
                algorithm = update or PAPER_UPDATE
                if ":" not in algorithm and (algorithm not in _control_updates()):
                    raise ValueError(f"unknown REINFORCE variant of a control {algorithm!r}; "
                                     f"choose from {list(_control_updates())}")
                get_algorithm(algorithm)
            elif entry.role == "reference":
                algorithm = entry.update
            else:
                raise ValueError(f"unknown baseline {kind!r}: {kind} is a reward every algorithm runs on")
            return cls(setting, algorithm, kind, int(seed))
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
        algorithm, separator, reward = name.rpartition(" @ ")
        algorithm, reward = (algorithm, reward) if separator else (name, DEFAULT_REWARD)
        if reward not in names("axis") and ":" not in reward and FORM_SEPARATOR not in reward:
            raise ValueError(f"unknown reward {reward!r}; choose from {list(names('axis'))}")
        if get_comparison_reward(reward).role != "axis":
            raise ValueError(f"unknown reward {reward!r}: a baseline, not a reward every algorithm runs on")
        entry = get_algorithm(algorithm)
        if not entry.compare:
            raise ValueError(f"unknown agent {algorithm!r}: not offered to a comparison's algos")
        return cls(setting, algorithm, reward, int(seed))


def _control_updates() -> tuple[str, ...]:
    from train.algorithms import names as algorithm_names

    return algorithm_names(runs_controls=True)


def job_name(algo: str, reward: str = DEFAULT_REWARD) -> str:
    """The run name of ``algo`` on ``reward`` in the fixed or adversarial setting."""
    return RunSpec("fixed", algo, reward, 0).name


def split_job_name(name: str) -> tuple[str, str]:
    """``(algo, reward)`` of a run name of the fixed or adversarial setting (inverse of :func:`job_name`)."""
    algorithm, separator, reward = name.rpartition(" @ ")
    return (algorithm, reward) if separator else (name, DEFAULT_REWARD)


def control_update(name: str) -> str:
    """The algorithm a control baseline (``constant/reinforce-mean``, or plain ``constant``) runs under."""
    return name.partition("/")[2] or PAPER_UPDATE


def result_path(root: Path, job: Job | RunSpec) -> Path:
    """``runs/<setting>/<slug>/seed<k>.json`` of a run."""
    spec = job if isinstance(job, RunSpec) else RunSpec.from_job(job)
    return spec.result_path(root)


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(data, indent=1))
    os.replace(temp, path)


def _baseline_run(setting: str, name: str) -> RunSpec | None:
    """The run of a baseline's row (``None`` for a method, or a name no registered baseline has)."""
    if setting != "baseline":
        return None
    try:
        return RunSpec.from_job((setting, name, 0))
    except ValueError:
        return None


def is_control(setting: str, name: str) -> bool:
    """Whether ``(setting, name)`` is a no-information control (its reward's role, e.g. constant or random)."""
    run = _baseline_run(setting, name)
    return run is not None and run.control


def method_label(setting: str, name: str) -> str:
    """The row label of a method: the agent's name, or what a baseline's reward is (and its update)."""
    run = _baseline_run(setting, name)
    return name if run is None else run.label


def row_label(row: dict[str, Any]) -> str:
    """A row's method with its setting where the method name alone is ambiguous (plots)."""
    return row["method"] if row["setting"] in ("-", "baseline") else f"{row['method']} ({row['setting']})"
