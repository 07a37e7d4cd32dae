"""Experiments over many training runs: the comparison, hyperparameter tuning and agent scoring.

One training run (pretraining, the adversarial loop, the pipeline) lives in :mod:`train`; the
algorithms every run can use are the registry :mod:`train.algorithms`. Here, one module per thing:

* :mod:`~train.experiments.config`: what a comparison runs (:class:`CompareConfig`), its presets,
  the checks of its names and hyperparameters, ``--hparams`` files;
* :mod:`~train.experiments.rewards`: the comparison's rewards and baselines (a registry);
* :mod:`~train.experiments.runs`: one run (:class:`RunSpec`): its name, folder and label;
* :mod:`~train.experiments.base`: the shared base (MLE generator, pretrained discriminators);
* :mod:`~train.experiments.steps`: one generator update of any registered algorithm;
* :mod:`~train.experiments.runner`: one run from the base, and its Ray Tune trial;
* :mod:`~train.experiments.comparison`: the comparison as a Tune experiment, and its report;
* :mod:`~train.experiments.tune_engine`: Ray Tune as the one experiment engine;
* :mod:`~train.experiments.tuning`: Optuna searches, the same budget for every algorithm;
* :mod:`~train.experiments.statistics`, :mod:`~train.experiments.reporting`,
  :mod:`~train.experiments.plots`: statistics, the results table, the figures;
* :mod:`~train.experiments.scoring`: scoring one agent on the reference protocol;
* :mod:`~train.experiments.commands`: the ``compare``, ``tune`` and ``evaluate --agent`` commands.
"""
