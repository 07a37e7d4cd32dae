"""The report's old import path: ``train.reporting`` re-exports what moved to
:mod:`train.experiments.statistics`, :mod:`train.experiments.reporting` and :mod:`train.experiments.plots`."""

from __future__ import annotations

from train.experiments.plots import *  # noqa: F403
from train.experiments.plots import save_figure  # noqa: F401
from train.experiments.reporting import *  # noqa: F403
from train.experiments.reporting import controls_for, improvement_column, method_label, write_report  # noqa: F401
from train.experiments.statistics import *  # noqa: F403
from train.experiments.statistics import (  # noqa: F401
    BOOTSTRAP_SEED,
    COOLED_MLE_CONTROL,
    MLE_CONTROL,
    iqm_ci,
    mean_ci,
    probability_of_improvement_ci,
    probability_of_lower,
)
