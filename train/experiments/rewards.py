"""The comparison's rewards: one entry each, for the rewards every algorithm runs on and for the baselines.

An entry (:class:`ComparisonReward`) names the env's reward kind it pays
(:data:`seqgan_env.rewards.registry.REWARDS`) and, if the kind reads a learned discriminator,
the base's file of that D and how it is pretrained (and retrained in the adversarial
setting). A reward without a learned D (the oracle's likelihood, a reward computed from other
models) leaves ``discriminator_file`` unset: the base pretrains nothing for it and its runs
load nothing; what the env kind reads is passed from the run's models by argument name
(:func:`train.experiments.runner.reward_arguments`).

Roles: ``axis`` (``CompareConfig.rewards``: every algorithm runs on it, in every setting),
``control`` (a reward that carries no information: it runs under every algorithm whose entry
``runs_controls``) and ``reference`` (runs once, under the entry's ``update``). A new reward of
the comparison is one :func:`register_comparison_reward` call; a user's module can register
one and be named as ``module:attr`` (imported in every process that reads the name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from seqgan_env.rewards.forms import check_reward_form
from seqgan_env.rewards.registry import EXACT_REGRET, get_reward_kind
from train.algorithms import load_object

ROLES = ("axis", "control", "reference")


@dataclass(frozen=True)
class ComparisonReward:
    """One reward of a comparison."""

    name: str
    env_reward: str
    """The env's reward kind (``make(reward=...)``)."""
    label: str
    """What the table calls it (``constant reward``)."""
    role: str = "axis"
    """``axis``, ``control`` or ``reference`` (see the module's docstring)."""
    discriminator_file: str | None = None
    """The base's file of its learned D (pretrained by :func:`train.experiments.base.prepare_base`);
    ``None``: it reads no learned D."""
    schedule: Mapping[str, Any] = field(default_factory=dict)
    """:class:`train.pretrain.DiscriminatorSchedule` fields its D is pretrained and retrained with."""
    update: str | None = None
    """A reference baseline's algorithm."""
    form: str | None = None
    """The ``reward_form`` its env kind pays (:mod:`seqgan_env.rewards.forms`); ``None``: the kind's
    default. A form is chosen per comparison with :func:`with_form` (``--reward-forms``)."""
    sequence_env_reward: str | None = None
    """The env's reward kind of its sequence-level form, which the sequence-level algorithms (RLOO,
    GRPO: :attr:`train.algorithms.Algorithm.sequence_level`) run on: the same D's score of the
    finished sequence and 0 before, no Monte Carlo completions. ``None``: ``env_reward`` (a reward
    that is already cheap per step: the controls, the dense reward)."""

    def env_reward_for(self, sequence_level: bool) -> str:
        """The env's reward kind a run of an algorithm that is (or is not) sequence-level gets."""
        return self.sequence_env_reward if sequence_level and self.sequence_env_reward else self.env_reward

    @property
    def checkpoint_kind(self) -> str | None:
        """The checkpoint kind of its D file (from the env's reward kind)."""
        return get_reward_kind(self.env_reward).checkpoint_kind if self.discriminator_file else None

    @property
    def discriminator_class(self) -> type | None:
        return get_reward_kind(self.env_reward).discriminator if self.discriminator_file else None


COMPARISON_REWARDS: dict[str, ComparisonReward] = {}
"""Every reward of the comparison, by name."""
DEFAULT_REWARD = "monte_carlo"
"""The paper's reward: its runs are named after the algorithm alone."""


def register_comparison_reward(reward: ComparisonReward, replace: bool = False) -> ComparisonReward:
    """Add ``reward`` to :data:`COMPARISON_REWARDS` (``replace``: over an entry of the same name)."""
    if reward.role not in ROLES:
        raise ValueError(f"reward {reward.name!r}: role must be one of {ROLES}, got {reward.role!r}")
    kind = get_reward_kind(reward.env_reward)
    if reward.sequence_env_reward is not None and (
            get_reward_kind(reward.sequence_env_reward).discriminator != kind.discriminator):
        raise ValueError(f"reward {reward.name!r}: its sequence-level kind {reward.sequence_env_reward!r} reads "
                         f"another discriminator than reward={reward.env_reward!r}")
    if reward.discriminator_file is not None and kind.discriminator is None:
        raise ValueError(f"reward {reward.name!r} names a D file, but reward={reward.env_reward!r} reads no "
                         "discriminator")
    if reward.discriminator_file is None and "discriminator" in kind.arguments:
        raise ValueError(f"reward {reward.name!r}: reward={reward.env_reward!r} reads a discriminator; name the "
                         "base's file of it (discriminator_file)")
    if reward.role == "reference" and reward.update is None:
        raise ValueError(f"reference reward {reward.name!r} needs the algorithm it runs under (update)")
    if not replace and reward.name in COMPARISON_REWARDS and COMPARISON_REWARDS[reward.name] != reward:
        raise ValueError(f"a comparison reward {reward.name!r} is already registered")
    COMPARISON_REWARDS[reward.name] = reward
    return reward


def unregister_comparison_reward(name: str) -> None:
    COMPARISON_REWARDS.pop(name, None)


FORM_SEPARATOR = "+"
"""Joins a reward's name and a form: ``optimal+logit`` is ``optimal`` paying D's logit."""


def with_form(name: str, form: str | None) -> str:
    """The name of reward ``name`` paid in ``form`` (``None``: ``name`` itself, the kind's default form)."""
    return name if form is None else f"{name}{FORM_SEPARATOR}{form}"


def _form_entry(name: str) -> ComparisonReward:
    """The entry of a ``<reward>+<form>`` name: ``<reward>``'s, paying ``form``, checked against what its kinds give."""
    base_name, _, form = name.rpartition(FORM_SEPARATOR)
    base = get_comparison_reward(base_name)
    if base.role != "axis":
        raise ValueError(f"reward {name!r}: only the rewards every algorithm runs on take a form, and {base_name!r} "
                         f"is a {base.role}")
    for kind_name in {base.env_reward, base.sequence_env_reward or base.env_reward}:
        kind = get_reward_kind(kind_name)
        if not kind.forms:
            raise ValueError(f"reward {base_name!r} (reward={kind_name!r}) pays no discriminator's score, so it has "
                             f"no form; leave {FORM_SEPARATOR}{form} out")
        check_reward_form(form, kind.forms, kind_name)
    return register_comparison_reward(ComparisonReward(**{**base.__dict__, "name": name, "form": form,
                                                          "label": f"{base.label} ({form} form)"}))


def get_comparison_reward(name: str) -> ComparisonReward:
    """The entry of ``name``; a ``module:attr`` name is imported and registered under that name first,
    and so is a ``<reward>+<form>`` name (:func:`with_form`)."""
    if name in COMPARISON_REWARDS:
        return COMPARISON_REWARDS[name]
    if isinstance(name, str) and FORM_SEPARATOR in name:
        return _form_entry(name)
    if isinstance(name, str) and ":" in name:
        loaded = load_object(name, "reward")
        if not isinstance(loaded, ComparisonReward):
            raise ValueError(f"reward {name!r} is a {type(loaded).__name__}, not a ComparisonReward")
        return register_comparison_reward(ComparisonReward(**{**loaded.__dict__, "name": name}))
    raise ValueError(f"unknown reward {name!r}; choose from {list(names('axis'))}")


def names(*roles: str) -> tuple[str, ...]:
    """The registered names of the given roles."""
    return tuple(r.name for r in COMPARISON_REWARDS.values() if r.role in roles)


def _regularised() -> dict[str, Any]:
    from train.pretrain import REGULARISED_D

    return dict(REGULARISED_D)


def _density_ratio() -> dict[str, Any]:
    """What makes ``density-ratio``'s D: the named D schedule's fields other than its budget."""
    from train.pretrain import d_schedule

    schedule = d_schedule("density-ratio")
    return {name: getattr(schedule, name) for name in ("model", "objective", "lr", "epochs", "fresh_real")}


# Sequence-level algorithms (RLOO, GRPO) get each reward's terminal form: D's score of the finished
# sequence is all they read, so the completions of every prefix would cost without informing them.
# The D-quality axis, from no information to all: ``random`` (a control), ``monte_carlo`` (the
# paper's CNN, near chance on fresh data), ``density-ratio`` (the best learned D of the D study)
# and ``optimal`` (the Bayes-optimal D*, exact). Each evaluation records the reward's held-out
# D metrics (``d_heldout_auc``, ...), and the table shows them.
for _reward in (
    ComparisonReward("monte_carlo", "monte_carlo", "the paper's D and Monte Carlo reward",
                     discriminator_file="discriminator.pt", sequence_env_reward="terminal"),
    ComparisonReward("density-ratio", "monte_carlo", "the Monte Carlo reward of a learned density-ratio D",
                     discriminator_file="discriminator-density-ratio.pt", schedule=_density_ratio(),
                     sequence_env_reward="terminal"),
    ComparisonReward("optimal", "optimal", "the Monte Carlo reward of the Bayes-optimal D*",
                     sequence_env_reward="optimal-terminal"),
    ComparisonReward("monte_carlo-reg", "monte_carlo", "the Monte Carlo reward of a regularised D",
                     discriminator_file="discriminator-reg.pt", schedule=_regularised(), sequence_env_reward="terminal"),
    ComparisonReward("dense", "dense", "a prefix discriminator's P(real) of every prefix, no rollouts",
                     discriminator_file="prefix-discriminator.pt"),
    # The task whose optimum is known: D*'s logit per token with kl_beta = 1 to the base generator
    # (set by the runs whatever the algorithm's hparams); each run's regret is its reverse KL.
    ComparisonReward(EXACT_REGRET, EXACT_REGRET, "the exact-regret task (D*'s logit per token, kl_beta = 1)"),
    ComparisonReward("constant", "constant", "constant reward", role="control"),
    ComparisonReward("random", "random", "random reward", role="control"),
    ComparisonReward("oracle", "oracle", "oracle log-likelihood reward", role="reference", update="oracle"),
):
    register_comparison_reward(_reward)
