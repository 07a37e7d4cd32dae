"""The reward kinds of ``make(reward=...)``: one entry each, read by the factory, its checks and docs.

An entry (:class:`RewardKind`) says everything the rest of the project needs about a kind:
its :class:`~seqgan_env.rewards.RewardModel` class (which declares whether its rewards are
per token and whether it uses a rollout policy), the keyword arguments of ``make`` it reads,
how it is built from them, and which discriminator class it reads from the ``discriminator``
argument, if any. The env factory (:mod:`seqgan_env.factory`), its argument checks, the
experiments and the command line all read :data:`REWARDS`; nothing else lists the kinds.

A new kind is one :func:`register_reward` call (here for a shipped kind, anywhere for a
user's): its build function receives a :class:`RewardInputs`, which resolves the arguments the
entry reads (a path to a model, ``None`` for the shipped default, ...). A reward whose scorer
is computed from other arguments (an oracle and a reference generator, say) rather than
loaded from a discriminator checkpoint builds it in its build function and leaves
``discriminator`` unset: nothing downstream assumes a learned D.

The resolvers of the models an argument names (a path, ``None`` for the shipped default, a
model) live here too (:func:`resolve_discriminator`, :func:`resolve_rollout_policy`,
:func:`resolve_oracle`; :mod:`seqgan_env.factory` re-exports them), so that the registry, the
factory and the reward classes import one another in one direction only.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from seqgan_env import paper_oracle
from seqgan_env.checkpoint import CheckpointError, load_model, model_kind
from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.presets import Preset
from seqgan_env.rewards import (
    REWARD_FORMS,
    ConstantReward,
    DensePrefixReward,
    MonteCarloReward,
    OracleLikelihoodReward,
    RandomReward,
    RewardModel,
    TerminalReward,
    check_reward_form,
)
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator, load_density_ratio
from seqgan_env.rewards.log_ratio import LOG_RATIO_FORMS, LogRatioReward
from seqgan_env.rollout import RolloutPolicy

DEFAULT_GENERATOR_FILE = "default_generator.pt"
DEFAULT_DISCRIMINATOR_FILE = "default_discriminator.pt"
NOT_GIVEN_VALUES: dict[str, Any] = {"compute_dtype": "auto"}
"""Argument values that mean "not given" besides ``None`` (the defaults of ``make``)."""


@dataclass
class RewardInputs:
    """What a reward kind's build function receives: the env's preset, device and end token,
    and the ``make`` arguments the kind reads (``None`` where not given), resolved on request."""

    kind: RewardKind
    preset: Preset
    device: torch.device
    eos_token: int | None
    arguments: dict[str, Any]
    prompt_length: int = 0
    """``k`` of prompted episodes (0: none); a scorer that depends on it (D*) reads it."""

    def get(self, name: str, default: Any = None) -> Any:
        """The raw argument ``name`` (``default`` where not given)."""
        value = self.arguments.get(name)
        return default if value is None else value

    def discriminator(self) -> Any:
        """The ``discriminator`` argument as a model of the kind's class, checked against the preset's sizes."""
        disc = resolve_discriminator(self.arguments.get("discriminator"), self.preset, self.kind.name)
        if (disc.vocab_size, disc.seq_len) != (self.preset.vocab_size, self.preset.seq_len):
            raise ValueError(f"the discriminator reads vocab {disc.vocab_size} x length {disc.seq_len}, the env is "
                             f"vocab {self.preset.vocab_size} x length {self.preset.seq_len}")
        return disc

    def rollout_policy(self) -> Any:
        """The ``rollout_policy`` argument as a policy (a path is loaded, ``None`` is the shipped default)."""
        return resolve_rollout_policy(self.arguments.get("rollout_policy"), self.preset)

    def oracle(self) -> Any:
        """The ``oracle`` argument as an :class:`~seqgan_env.models.Oracle` of the preset's vocabulary."""
        model = resolve_oracle(self.arguments.get("oracle"), self.preset)
        if model.vocab_size != self.preset.vocab_size:
            raise ValueError(f"the oracle has a vocabulary of {model.vocab_size}, the preset {self.preset.vocab_size}")
        return model

    def num_rollouts(self) -> int:
        """``num_rollouts``, or the preset's."""
        return int(self.get("num_rollouts", self.preset.num_rollouts))

    def form(self) -> str:
        """``reward_form``, checked against the forms the kind can pay (default: its first)."""
        return check_reward_form(self.get("reward_form", self.kind.forms[0]), self.kind.forms, self.kind.name)

    def reference(self, default: Callable[[], Any] | None = None) -> Any:
        """The ``reference`` argument as a generator (a path is loaded); when not given, ``default()``,
        else the preset's shipped generator (the ``default`` preset's MLE generator; else an untrained
        one, with a warning)."""
        from seqgan_env.models import TokenLSTM

        reference = self.arguments.get("reference")
        if isinstance(reference, (str, Path)):
            reference = load_model(_existing_file(reference, "reference"), "generator")
        elif reference is None and default is not None:
            reference = default()
        elif reference is None:
            reference = _shipped_or_untrained(self.preset, DEFAULT_GENERATOR_FILE, "generator", Generator.from_preset,
                                              "the reference is an untrained generator", argument="reference")
        if not isinstance(reference, TokenLSTM):
            raise TypeError(f"reference must be a generator (a seqgan_env TokenLSTM or its file), got "
                            f"{type(reference).__name__}")
        return reference.to(self.device)


@dataclass(frozen=True)
class RewardKind:
    """One reward kind of ``make(reward=...)``."""

    name: str
    model: type[RewardModel]
    """The reward model's class; it declares ``per_token`` and ``uses_rollout_policy``."""
    arguments: tuple[str, ...]
    """The keyword arguments of ``make`` it reads (besides the MDP's); any other is refused."""
    build: Callable[[RewardInputs], RewardModel]
    """Builds the reward model from the resolved arguments."""
    summary: str
    """One line for the docs and the command line's help."""
    discriminator: type | None = None
    """The discriminator class it reads from the ``discriminator`` argument (``None``: it reads none)."""
    forms: tuple[str, ...] = ()
    """The forms of its score it can pay (``reward_form``; :mod:`seqgan_env.rewards.forms`), the
    default first; empty: it pays no discriminator's score and reads no ``reward_form``."""
    kl_beta: float | None = None
    """The KL coefficient to its ``reference`` that the kind's task is defined with (``exact-regret``:
    1, which makes the objective ``-KL(pi || p_oracle)``); the training commands set every agent's
    ``kl_beta`` to it, with the same reference. ``None``: the kind leaves ``kl_beta`` to the user."""

    @property
    def per_token(self) -> bool:
        """Whether each step pays for its own token (see :attr:`RewardModel.per_token`)."""
        return self.model.per_token

    @property
    def uses_rollout_policy(self) -> bool:
        return self.model.uses_rollout_policy

    @property
    def checkpoint_kind(self) -> str | None:
        """The checkpoint kind of the discriminator it reads (``seqgan_env.checkpoint``), or ``None``."""
        if self.discriminator is None:
            return None
        return "prefix-discriminator" if issubclass(self.discriminator, PrefixDiscriminator) else "discriminator"


REWARDS: dict[str, RewardKind] = {}
"""Every reward kind, by name, in the order registered."""


def register_reward(kind: RewardKind, replace: bool = False) -> RewardKind:
    """Add ``kind`` to :data:`REWARDS` (``replace``: over an entry of the same name)."""
    if not replace and kind.name in REWARDS:
        raise ValueError(f"a reward kind {kind.name!r} is already registered")
    if not (isinstance(kind.model, type) and issubclass(kind.model, RewardModel)):
        raise TypeError(f"reward kind {kind.name!r}: model must be a RewardModel class, got {kind.model!r}")
    if bool(kind.forms) != ("reward_form" in kind.arguments):
        raise ValueError(f"reward kind {kind.name!r}: list its forms exactly when it reads 'reward_form'")
    unknown = [form for form in kind.forms if form not in REWARD_FORMS]
    if unknown:
        raise ValueError(f"reward kind {kind.name!r}: unknown forms {unknown}; the forms are {list(REWARD_FORMS)}")
    if kind.discriminator is not None and "discriminator" not in kind.arguments:
        raise ValueError(f"reward kind {kind.name!r} reads a {kind.discriminator.__name__} but not the "
                         "'discriminator' argument")
    REWARDS[kind.name] = kind
    return kind


def unregister_reward(name: str) -> None:
    """Remove a kind (a test's toy reward, say)."""
    REWARDS.pop(name, None)


def get_reward_kind(name: str) -> RewardKind:
    """The entry of reward kind ``name``, or a ``ValueError`` listing the kinds.

    A ``module:attr`` name (a :class:`RewardKind` defined in the user's module) is imported and
    registered under that name first: how a user's reward reaches processes that did not register
    it (a comparison's Ray workers, say). Only a module the caller names is imported."""
    if isinstance(name, str) and name not in REWARDS and ":" in name:
        import importlib

        module_name, _, attr = name.partition(":")
        try:
            kind = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"cannot load reward kind {name!r}: {exc}") from None
        if not isinstance(kind, RewardKind):
            raise ValueError(f"reward kind {name!r} is a {type(kind).__name__}, not a RewardKind")
        return register_reward(dataclasses.replace(kind, name=name), replace=True)
    try:
        return REWARDS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown reward kind {name!r}; choose one of {list(REWARDS)}") from None


def __getattr__(name: str) -> Any:
    # Views of the registry, current at every read (a kind registered at run time shows in them).
    if name == "REWARD_KINDS":
        return tuple(REWARDS)
    if name == "REWARD_ARGUMENTS":
        return {kind.name: kind.arguments for kind in REWARDS.values()}
    if name == "DISCRIMINATOR_KINDS":
        return {kind.name: kind.discriminator for kind in REWARDS.values() if kind.discriminator is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _existing_file(path: str | Path, argument: str) -> Path:
    """``path``, checked to be a file, or ``FileNotFoundError`` naming the argument."""
    if not Path(path).is_file():
        what = "is a folder, not a file" if Path(path).is_dir() else "does not exist"
        raise FileNotFoundError(f"{argument}={str(path)!r}: {what}")
    return Path(path)


def asset_path(name: str) -> Path:
    """Path of a file shipped in ``seqgan_env/assets``."""
    return Path(str(resources.files("seqgan_env") / "assets" / name))


def resolve_oracle(oracle: Any, preset: Preset) -> Oracle:
    """An :class:`Oracle` from ``"builtin"``/``None``, ``"paper"`` (the paper's, as fetched by
    :func:`seqgan_env.paper_oracle.fetch`), a seed, a path, or an Oracle."""
    if oracle is None or oracle == "builtin":
        return Oracle.from_preset(preset)
    if isinstance(oracle, Oracle):
        return oracle
    if isinstance(oracle, int) and not isinstance(oracle, bool):
        return Oracle.from_preset(preset.replace(oracle_seed=oracle))
    if isinstance(oracle, (str, Path)):
        path = paper_oracle.resolve(oracle)  # "paper": the file `seqgan oracle fetch` wrote
        return Oracle.load(_existing_file(path, "oracle"), seq_len=preset.seq_len, start_token=preset.start_token)
    raise TypeError(f"oracle must be 'builtin', 'paper', a seed, a path or an Oracle, got {type(oracle).__name__}")


def _shipped_or_untrained(preset: Preset, file: str | None, kind: str, build: Any, consequence: str,
                          argument: str | None = None) -> Any:
    """The shipped model of the ``default`` preset (``file``), else a seeded untrained one (with a
    warning naming ``argument``, by default the one that reads a model of that kind)."""
    if file is not None and preset.name == "default" and asset_path(file).is_file():
        return load_model(asset_path(file), kind)
    argument = argument or ("rollout_policy" if kind == "generator" else "discriminator")
    name = {"rollout_policy": "rollout policy", "discriminator": "discriminator"}.get(argument, argument)
    warnings.warn(
        f"no {name} given for preset {preset.name!r}: {consequence}; pass "
        f"{argument}=... (a model or a saved file)", stacklevel=4,
    )
    with torch.random.fork_rng():  # a fixed untrained model, without touching the caller's RNG
        torch.manual_seed(0)
        return build(preset)


def resolve_discriminator(discriminator: Any, preset: Preset,
                          reward: str = "monte_carlo") -> Discriminator | PrefixDiscriminator:
    """The discriminator ``reward`` reads from ``None`` (shipped default), a path, or a model.

    A model or file of the other discriminator kind is a ``ValueError`` naming both."""
    cls = get_reward_kind(reward).discriminator
    if cls is None:
        raise ValueError(f"reward={reward!r} reads no discriminator")
    kind = "prefix-discriminator" if cls is PrefixDiscriminator else "discriminator"  # checkpoint kind
    if isinstance(discriminator, (str, Path)):
        path = _existing_file(discriminator, "discriminator")
        discriminator = load_model(path)
        if not isinstance(discriminator, (Discriminator, PrefixDiscriminator)):
            raise CheckpointError(f"discriminator={str(path)!r} holds a {model_kind(discriminator)!r}, "
                                  f"expected a {kind!r}")
    if isinstance(discriminator, cls):
        return discriminator
    if isinstance(discriminator, (Discriminator, PrefixDiscriminator)):
        raise wrong_discriminator_kind(discriminator, cls, reward)
    if discriminator is not None:
        raise TypeError(f"discriminator must be a {cls.__name__} or a path, got {type(discriminator).__name__}")
    if cls is PrefixDiscriminator:
        return _shipped_or_untrained(preset, None, kind, PrefixDiscriminator.from_preset,
                                     "using an untrained PrefixDiscriminator, whose reward means little")
    return _shipped_or_untrained(preset, DEFAULT_DISCRIMINATOR_FILE, "discriminator", Discriminator.from_preset,
                                 "using an untrained one, whose reward means little")


def resolve_rollout_policy(policy: Any, preset: Preset) -> RolloutPolicy:
    """A rollout policy from ``None`` (shipped default generator), a path, or a policy."""
    if isinstance(policy, (str, Path)):
        return load_model(_existing_file(policy, "rollout_policy"), "generator")
    if policy is not None:
        if not isinstance(policy, RolloutPolicy):
            raise TypeError(f"rollout_policy needs start() and step(); got {type(policy).__name__}")
        return policy
    return _shipped_or_untrained(preset, DEFAULT_GENERATOR_FILE, "generator", Generator.from_preset,
                                 "completing prefixes with an untrained generator")


def wrong_discriminator_kind(discriminator: Any, kind: type, reward: str | None = None) -> ValueError:
    """The error for a discriminator of the other kind than ``kind``, naming the rewards that read it."""
    readers = [kind.name for kind in REWARDS.values()
               if kind.discriminator is not None and isinstance(discriminator, kind.discriminator)]
    who = f"reward={reward!r}" if reward else "this reward"
    return ValueError(f"{who} needs a {kind.__name__}, got a {type(discriminator).__name__} "
                      f"(read by reward={' or '.join(map(repr, readers))})")


def _monte_carlo(inputs: RewardInputs) -> RewardModel:
    return MonteCarloReward(inputs.discriminator(), inputs.rollout_policy(), num_rollouts=inputs.num_rollouts(),
                            compute_dtype=inputs.get("compute_dtype", "auto"), eos_token=inputs.eos_token,
                            device=inputs.device, form=inputs.form())


def _optimal_discriminator(inputs: RewardInputs) -> Any:
    """D* of ``reward="optimal"``: the oracle (required) against ``reference`` (a generator or its
    file; by default the rollout policy, which is the generator being trained in SeqGAN)."""
    from seqgan_env.rewards.density_ratio import OptimalDiscriminator

    _require_oracle(inputs)
    return OptimalDiscriminator(inputs.oracle(), inputs.reference(default=inputs.rollout_policy),
                                prompt_length=inputs.prompt_length)


def _require_oracle(inputs: RewardInputs) -> None:
    if inputs.arguments.get("oracle") is None:
        raise ValueError(f"reward={inputs.kind.name!r} needs oracle=... (the density of the real data: 'builtin', "
                         "a seed, or an oracle file); real text has none, so D* does not exist there")


def _optimal_monte_carlo(inputs: RewardInputs) -> RewardModel:
    return MonteCarloReward(_optimal_discriminator(inputs), inputs.rollout_policy(),
                            num_rollouts=inputs.num_rollouts(), eos_token=inputs.eos_token, device=inputs.device,
                            form=inputs.form())


def _optimal_per_token(inputs: RewardInputs) -> RewardModel:
    """D*'s logit per token: the oracle against ``reference`` (default: the preset's shipped generator)."""
    _require_oracle(inputs)
    return LogRatioReward(inputs.oracle(), inputs.reference(), device=inputs.device, form=inputs.form())


def _density_ratio_per_token(inputs: RewardInputs) -> RewardModel:
    """A learned density-ratio D's logit per token: its numerator against its reference (for a saved
    D, the ``reference`` argument, default the preset's shipped generator)."""
    disc = inputs.arguments.get("discriminator")
    if disc is None:
        raise ValueError(f"reward={inputs.kind.name!r} needs discriminator=...: a learned density-ratio D "
                         "(seqgan_env.rewards.density_ratio.DensityRatioDiscriminator) or its file (save_density_ratio)")
    if isinstance(disc, (str, Path)):
        disc = load_density_ratio(_existing_file(disc, "discriminator"), inputs.reference())
    elif inputs.arguments.get("reference") is not None:
        disc.set_reference(inputs.reference())
    if not isinstance(disc, DensityRatioDiscriminator):
        raise wrong_discriminator_kind(disc, DensityRatioDiscriminator, inputs.kind.name) \
            if isinstance(disc, (Discriminator, PrefixDiscriminator)) else \
            TypeError(f"discriminator must be a DensityRatioDiscriminator or its file, got {type(disc).__name__}")
    return LogRatioReward(disc.numerator, disc.reference, device=inputs.device, form=inputs.form())


EXACT_REGRET = "exact-regret"
"""The reward kind of the exact-regret task (see its entry below and docs/regret.md)."""

_D_FORMS = REWARD_FORMS  # a discriminator's score: probability (the paper's, the default), logit, log

for _kind in (
    RewardKind("monte_carlo", MonteCarloReward,
               ("discriminator", "rollout_policy", "num_rollouts", "compute_dtype", "reward_form"),
               _monte_carlo, "the paper's: mean P(real) of Monte Carlo completions of each prefix", Discriminator,
               forms=_D_FORMS),
    RewardKind("terminal", TerminalReward, ("discriminator", "compute_dtype", "reward_form"),
               lambda inputs: TerminalReward(inputs.discriminator(), compute_dtype=inputs.get("compute_dtype", "auto"),
                                             device=inputs.device, form=inputs.form()),
               "sparse: P(real) of the finished sequence, 0 before", Discriminator, forms=_D_FORMS),
    RewardKind("oracle", OracleLikelihoodReward, ("oracle",),
               lambda inputs: OracleLikelihoodReward(inputs.oracle(), device=inputs.device),
               "the oracle's log-probability of each token"),
    RewardKind("constant", ConstantReward, (), lambda inputs: ConstantReward(device=inputs.device),
               "1 after every token (a control)"),
    RewardKind("random", RandomReward, (), lambda inputs: RandomReward(device=inputs.device),
               "uniform [0, 1) after every token (a control)"),
    RewardKind("dense", DensePrefixReward, ("discriminator", "reward_form"),
               lambda inputs: DensePrefixReward(inputs.discriminator(), device=inputs.device, form=inputs.form()),
               "P(real) of every prefix from a PrefixDiscriminator, no rollouts", PrefixDiscriminator,
               forms=_D_FORMS),
    # The Bayes-optimal discriminator D* = p_oracle / (p_oracle + p_reference) (Goodfellow et al.
    # 2014, Prop. 1): exact, no training; the ceiling of what any learned D can tell the policy.
    RewardKind("optimal", MonteCarloReward, ("oracle", "reference", "rollout_policy", "num_rollouts", "reward_form"),
               _optimal_monte_carlo, "the Monte Carlo reward scored by the Bayes-optimal D* (oracle vs reference)",
               forms=_D_FORMS),
    RewardKind("optimal-terminal", TerminalReward, ("oracle", "reference", "rollout_policy", "reward_form"),
               lambda inputs: TerminalReward(_optimal_discriminator(inputs), device=inputs.device, form=inputs.form()),
               "D*'s P(real) of the finished sequence, 0 before", forms=_D_FORMS),
    # D*'s logit split over its tokens: log p_oracle(y_t | y_<t) - log p_ref(y_t | y_<t), no completions.
    RewardKind("optimal-dense", LogRatioReward, ("oracle", "reference", "reward_form"), _optimal_per_token,
               "D*'s logit per token: log p_oracle - log p_reference of each token, no rollouts",
               forms=LOG_RATIO_FORMS),
    RewardKind("density-ratio-dense", LogRatioReward, ("discriminator", "reference", "reward_form"),
               _density_ratio_per_token,
               "a learned density-ratio D's logit per token: log p_numerator - log p_reference of each token",
               DensityRatioDiscriminator, forms=LOG_RATIO_FORMS),
    # The task whose optimum is known: D*'s per-token logit against pi_ref with a KL penalty beta = 1
    # to the same pi_ref. Each step then earns log p_oracle(y_t | y_<t) - log pi(y_t | y_<t), so the
    # expected return is -KL(pi || p_oracle): 0 at pi = the oracle, and a policy's regret is its
    # reverse KL to the oracle, which every evaluation measures exactly.
    RewardKind(EXACT_REGRET, LogRatioReward, ("oracle", "reference", "reward_form"), _optimal_per_token,
               "the exact-regret task: D*'s logit per token with kl_beta = 1 to the same reference; "
               "expected return -KL(pi || p_oracle)", forms=LOG_RATIO_FORMS, kl_beta=1.0),
):
    register_reward(_kind)
