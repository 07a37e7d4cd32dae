"""The generator-training algorithms: one entry each, read by training, the comparison, tuning and the CLI.

Every algorithm takes ``kl_beta`` (default 0, the algorithm as it was): the coefficient of
the KL-regularised reward ``r_t - beta * (log pi - log pi_ref)``; the run wraps the env in
:func:`seqgan_env.rewards.reference_penalty.with_reference_penalty` (the reference's half) and the
agent adds the policy's half (:mod:`agents.kl_penalty`; SB3: :func:`sb3_kl_callback`; RLlib's
PPO: :class:`agents.rllib.KLPenaltyCallback`).

An entry (:class:`Algorithm`) says how the algorithm builds its agent, which hyperparameters it
takes (with their defaults) and which ones the caller sets itself, its search space for
``seqgan tune``, whether the comparison's controls run under it and whether ``seqgan train
--algo`` offers it. ``seqgan train`` (:mod:`train.pipeline`), ``seqgan compare``
(:mod:`train.experiments`), ``seqgan tune`` and the command line's choices and help read
:data:`ALGORITHMS`; nothing else lists the algorithms.

Families say how a run drives the agent:

* ``reinforce``: ``make_agent(generator, envs, seed, **hparams)`` returns an
  :class:`agents.Agent` that learns from collected episodes (any agent class fits here);
* ``sb3``: ``make_agent(envs, generator=, seed=, device=, **hparams)`` returns an SB3 model;
* ``rllib``: RLlib's PPO, built by the comparison (:func:`agents.rllib.make_ppo`).

A new REINFORCE variant is one :func:`reinforce_variant` entry; a new agent class one
:class:`Algorithm` of family ``reinforce``. A user's ``--agent module:function`` names either a
function ``function(generator, envs, seed) -> Agent`` (no hyperparameters, no controls) or an
:class:`Algorithm` object (all of it): :func:`get_algorithm` registers either through
:func:`register_algorithm`, in every process that reads the name.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("reinforce", "sb3", "rllib")


@dataclass(frozen=True)
class Algorithm:
    """One generator-training algorithm."""

    name: str
    summary: str
    """A few words for the command line's help."""
    family: str = "reinforce"
    """How a run drives it (:data:`FAMILIES`)."""
    make_agent: Callable[..., Any] | None = None
    """Builds the agent (``reinforce``) or the SB3 model (``sb3``); see the module's docstring."""
    hparams: Callable[[], dict[str, Any]] = dict
    """Its hyperparameters and their defaults (a function: SB3's and RLlib's are read from their signatures)."""
    fixed: Mapping[str, str] = field(default_factory=dict)
    """Hyperparameters set by the algorithm or the run itself, with why: ``hparams`` may not set them."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The values the algorithm fixes itself (a REINFORCE variant's ``baseline``)."""
    check: Callable[[dict[str, Any]], None] | None = None
    """Checks hyperparameter values (raises ``ValueError``)."""
    search_space: Mapping[str, tuple] | None = None
    """What ``seqgan tune`` searches: name -> ``("loguniform"|"uniform"|"int", low, high)`` or
    ``("choice", [values])``; ``None``: not tunable."""
    runs_controls: bool = False
    """Whether the comparison's controls (constant, random reward) run under it."""
    train: bool = False
    """Whether ``seqgan train --algo`` offers it."""
    compare: bool = True
    """Whether ``seqgan compare --algos`` offers it (the oracle baseline's update is not offered)."""
    sequence_level: bool = False
    """Whether it learns from one reward per sequence (RLOO, GRPO): the comparison then gives it its
    reward's sequence-level form (:attr:`train.experiments.rewards.ComparisonReward.sequence_env_reward`:
    D's score of the finished sequence, no Monte Carlo completions)."""

    def check_hparams(self, values: dict[str, Any]) -> None:
        """ValueError naming a hyperparameter this algorithm does not take, one it sets itself, or a bad value."""
        if not isinstance(values, dict):
            raise ValueError(f"hparams[{self.name!r}] must map hyperparameter names to values, got {values!r}")
        set_here = [name for name in values if name in self.fixed]
        if set_here:
            raise ValueError(f"hparams[{self.name!r}] sets {', '.join(map(repr, set_here))}, which the comparison "
                             f"sets itself ({'; '.join(f'{n}: {self.fixed[n]}' for n in set_here)})")
        known = set(self.hparams()) - set(self.fixed)
        bad = [name for name in values if name not in known]
        if bad:
            raise ValueError(f"unknown hyperparameter{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
                             f"in hparams[{self.name!r}]; {self.name} takes {sorted(known)}")
        if self.check is not None:
            self.check(values)


ALGORITHMS: dict[str, Algorithm] = {}
"""Every algorithm, by name, in the order registered."""


def register_algorithm(algorithm: Algorithm, replace: bool = False) -> Algorithm:
    """Add ``algorithm`` to :data:`ALGORITHMS` (``replace``: over an entry of the same name)."""
    if algorithm.family not in FAMILIES:
        raise ValueError(f"algorithm {algorithm.name!r}: family must be one of {FAMILIES}, got {algorithm.family!r}")
    if algorithm.family != "rllib" and algorithm.make_agent is None:
        raise ValueError(f"algorithm {algorithm.name!r} has no make_agent")
    if not replace and algorithm.name in ALGORITHMS and ALGORITHMS[algorithm.name] != algorithm:
        raise ValueError(f"an algorithm {algorithm.name!r} is already registered")
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def unregister_algorithm(name: str) -> None:
    """Remove an entry (a test's toy algorithm, say)."""
    ALGORITHMS.pop(name, None)


def get_algorithm(name: str) -> Algorithm:
    """The entry of ``name``; a ``module:attr`` name is imported and registered under that name first."""
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    if isinstance(name, str) and ":" in name:
        return register_algorithm(agent_algorithm(name, load_object(name, "agent")))
    raise ValueError(f"unknown agent {name!r}: one of {list(names(compare=True))} or 'module:function'")


def names(**flags: bool) -> tuple[str, ...]:
    """The registered names whose flags (``train``, ``compare``, ``runs_controls``) have the given values."""
    return tuple(a.name for a in ALGORITHMS.values() if all(getattr(a, k) == v for k, v in flags.items()))


def tunable() -> tuple[str, ...]:
    """The algorithms with a search space."""
    return tuple(a.name for a in ALGORITHMS.values() if a.search_space is not None)


def load_object(spec: str, what: str) -> Any:
    """``module:attr`` -> the object (importing the module, which may register entries of its own)."""
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot load {what} {spec!r}: {exc}") from None


def agent_algorithm(spec: str, loaded: Any) -> Algorithm:
    """The entry of a user's ``--agent module:attr``: the :class:`Algorithm` it names (under ``spec``),
    or a plain factory ``function(generator, envs, seed) -> Agent`` (no hyperparameters or controls)."""
    if isinstance(loaded, Algorithm):
        return dataclasses.replace(loaded, name=spec)
    if not callable(loaded):
        raise ValueError(f"agent {spec!r} is not callable")
    return Algorithm(spec, f"a user's agent ({spec})", "reinforce", lambda generator, envs, seed, **_: loaded(
        generator, envs, seed))


def keyword_names(function: Callable[..., Any]) -> dict[str, Any]:
    """The named parameters of ``function`` (not ``self``, ``*args`` or ``**kwargs``) and their defaults."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: None if p.default is inspect.Parameter.empty else p.default
            for name, p in inspect.signature(function).parameters.items() if p.kind in named and name != "self"}


# -- REINFORCE ----------------------------------------------------------------------------
REINFORCE_SPACE: dict[str, tuple] = {
    "lr": ("loguniform", 1e-4, 5e-2),  # Adam step of G; the paper's 0.01 in the middle
    "rollout_beta": ("uniform", 0.0, 0.95),  # delay of the rollout copy (paper 0.8, original code 0)
    "entropy_coef": ("loguniform", 1e-5, 1e-1),  # entropy bonus against sharpening
}


def reinforce_variant(name: str, summary: str, search_space: Mapping[str, tuple] | None = None,
                      runs_controls: bool = True, train: bool = True, compare: bool = True,
                      **config: Any) -> Algorithm:
    """REINFORCE (:class:`agents.reinforce.ReinforceAgent`) with the :class:`ReinforceConfig` fields
    ``config`` fixed (``baseline="mean"``, ...), the others its hyperparameters. Reward-to-go is
    not fixed here: it follows the reward's declaration (``ReinforceConfig.reward_to_go``)."""
    from agents.reinforce import ReinforceConfig

    def reinforce_config(values: dict[str, Any]) -> Any:
        try:
            return ReinforceConfig(**{**values, **config})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"hparams[{name!r}]: {exc}") from None

    def make_agent(generator: Any, envs: Any, seed: int, **hparams: Any) -> Any:
        from agents.reinforce import ReinforceAgent

        return ReinforceAgent(generator, reinforce_config(hparams), seed=seed)

    fields = {f.name: f.default for f in dataclasses.fields(ReinforceConfig)}
    fixed = {key: f"{name} is the variant with {key} {value!r}" for key, value in config.items()}
    return Algorithm(name, summary, "reinforce", make_agent, lambda: dict(fields), fixed, dict(config),
                     reinforce_config, search_space, runs_controls=runs_controls, train=train, compare=compare)


# -- SB3 and RLlib ------------------------------------------------------------------------
SB3_SET_HERE = {"policy": "the comparison's generator policy", "env": "the comparison's env",
                "seed": "the run's seed", "device": "--device",
                "n_steps": "one episode per env per update: the batch is `batch_size` sequences",
                "_init_setup_model": "internal"}
"""PPO/A2C arguments a run sets itself, so ``hparams`` may not."""


def sb3_algorithm(name: str, summary: str, search_space: Mapping[str, tuple]) -> Algorithm:
    """PPO or A2C of stable-baselines3 with the presets of :mod:`agents.sb3.presets`."""

    def make_agent(envs: Any, kl_beta: float = 0.0, **kwargs: Any) -> Any:
        # kl_beta is not SB3's: the run wraps the env and adds sb3_kl_callback(kl_beta) to learn().
        from agents.sb3 import make_a2c, make_ppo

        return (make_ppo if name == "ppo" else make_a2c)(envs, **kwargs)

    def hparams() -> dict[str, Any]:
        from stable_baselines3 import A2C, PPO

        return {**keyword_names((PPO if name == "ppo" else A2C).__init__), "kl_beta": 0.0}

    return Algorithm(name, summary, "sb3", make_agent, hparams, SB3_SET_HERE, search_space=search_space, train=True)


def sb3_kl_callback(kl_beta: float) -> Any:
    """The SB3 callback of the policy's half of the KL-regularised reward, or ``None`` for ``kl_beta = 0``."""
    if not kl_beta:
        return None
    from agents.sb3 import KLPenaltyCallback

    return KLPenaltyCallback(kl_beta)


def sequence_level_algorithm(name: str, summary: str, module: str, config_class: str, factory: str,
                             search_space: Mapping[str, tuple]) -> Algorithm:
    """An agent that learns from each episode's sequence-level reward over groups of k rows
    (:mod:`agents.rloo`, :mod:`agents.grpo`): its config dataclass's fields are its hyperparameters.
    Offered by ``seqgan compare`` and ``seqgan tune``; not yet by ``seqgan train --algo``, whose
    resume path has not been tested with them."""

    def config(values: dict[str, Any]) -> Any:
        try:
            return getattr(importlib.import_module(module), config_class)(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"hparams[{name!r}]: {exc}") from None

    def make_agent(generator: Any, envs: Any, seed: int, **hparams: Any) -> Any:
        return getattr(importlib.import_module(module), factory)(generator, envs, seed, **hparams)

    def hparams() -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(getattr(importlib.import_module(module), config_class))}

    return Algorithm(name, summary, "reinforce", make_agent, hparams, check=lambda values: config(values) and None,
                     search_space=search_space, runs_controls=True, train=False, sequence_level=True)


def _rllib_hparams() -> dict[str, Any]:
    # Arguments of PPOConfig.training (its own and, through **kwargs, AlgorithmConfig's), as
    # agents.rllib.ppo_config passes them on.
    try:
        from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
        from ray.rllib.algorithms.ppo import PPOConfig
    except ImportError:
        raise ValueError("hparams for rllib-ppo need RLlib: pip install 'seqgan-env[ray]'") from None
    return {**keyword_names(AlgorithmConfig.training), **keyword_names(PPOConfig.training), "kl_beta": 0.0}


for _entry in (
    reinforce_variant("reinforce", "the paper's update, no baseline", REINFORCE_SPACE, baseline="none"),
    reinforce_variant("reinforce-mean", "batch-mean baseline", REINFORCE_SPACE, baseline="mean"),
    reinforce_variant("reinforce-value", "learned value baseline",
                      {**REINFORCE_SPACE, "value_lr": ("loguniform", 1e-4, 1e-1)}, baseline="value"),
    # gamma/gae_lambda stay those of agents.sb3.discount_for (what makes the return the
    # paper's objective; with the Monte Carlo reward's gamma = 0, gae_lambda has no effect),
    # and n_steps stays one episode per env, so a rollout is one update's batch.
    sb3_algorithm("ppo", "SB3's PPO", {
        "learning_rate": ("loguniform", 1e-5, 1e-2),
        "n_epochs": ("int", 1, 10),
        "clip_range": ("choice", [0.1, 0.2, 0.3, 0.4]),
        "ent_coef": ("loguniform", 1e-6, 1e-1),
        "vf_coef": ("uniform", 0.2, 1.0),
        "max_grad_norm": ("loguniform", 0.3, 5.0),
    }),
    sb3_algorithm("a2c", "SB3's A2C", {
        "learning_rate": ("loguniform", 1e-4, 5e-2),
        "ent_coef": ("loguniform", 1e-6, 1e-1),
        "vf_coef": ("uniform", 0.2, 1.0),
        "max_grad_norm": ("loguniform", 0.3, 5.0),
        "normalize_advantage": ("choice", [True, False]),
    }),
    sequence_level_algorithm("rloo", "REINFORCE, leave-one-out baseline over k samples", "agents.rloo", "RlooConfig",
                             "make_rloo", {"lr": ("loguniform", 1e-4, 5e-2), "group_size": ("choice", [2, 4, 8]),
                                           "kl_beta": ("loguniform", 1e-3, 1.0)}),
    sequence_level_algorithm("grpo", "group-normalised advantages, clipped ratio, KL to the start", "agents.grpo",
                             "GrpoConfig", "make_grpo", {"lr": ("loguniform", 1e-4, 1e-2),
                                                         "clip_eps": ("choice", [0.1, 0.2, 0.3]),
                                                         "epochs": ("int", 1, 8),
                                                         "kl_coef": ("loguniform", 1e-3, 1.0)}),
    Algorithm("rllib-ppo", "RLlib's PPO", "rllib", hparams=_rllib_hparams,
              fixed={"train_batch_size_per_learner": "one episode per env per update: the batch is "
                                                     "`batch_size` sequences"}),
    # The oracle baseline's update: REINFORCE with a batch-mean baseline and the default
    # hyperparameters (reward-to-go from the oracle reward's per-token declaration).
    reinforce_variant("oracle", "the oracle baseline's update", runs_controls=False, train=False, compare=False,
                      baseline="mean"),
):
    register_algorithm(_entry)
