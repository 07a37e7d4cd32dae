"""A Tune callback that hands each trial's results to the driver as they arrive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ray import tune


class ResultHook(tune.Callback):
    """Calls ``handler(trial_config, result)`` in the driver for every result a trial reports.

    The driver then writes what a trial found as soon as it is reported (a comparison's run
    result), so a driver killed later loses only the runs still going. ``handler`` must be a
    module-level function (or a ``functools.partial`` of one): Tune keeps its callbacks in its
    saved state.
    """

    def __init__(self, handler: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
        self.handler = handler

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        self.handler((trial.config or {}).get("trial", {}), result)
