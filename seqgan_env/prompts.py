"""Prompts: the first ``k`` tokens of an episode, written by someone other than the agent.

With ``prompt_length=k`` every episode of the env starts from a prefix of ``k`` tokens drawn
afresh at each reset, and the agent writes the other ``seq_len - k``: the setting of
reinforcement learning on language models, where a policy completes prompts and the methods
that compare samples (RLOO, GRPO) compare the completions of one prompt with each other. A
:class:`PromptSource` draws the prompts from the env's own random generator, so the same seed
gives the same prompts:

* :class:`OraclePrompts` (the synthetic benchmark): the oracle's first ``k`` tokens, so a
  prompt is the beginning of a real sequence;
* :class:`HeldOutPrompts` (text): the first ``k`` tokens of a line of the held-out split;
* :class:`UniformPrompts` (the bare MDP's default): ``k`` uniform tokens.

A prompt never holds the end token: the episode would be over before the agent's first step
(the oracle's draw excludes it, held-out lines that end within ``k`` tokens are skipped).
:func:`complete` samples a model's continuations of given prefixes (the KL of
:mod:`seqgan_env.divergence` on completions of prompts, the evaluation's samples).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch

from seqgan_env.devices import generator_on
from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.sampling import sample_categorical


def check_prompt_length(prompt_length: int, seq_len: int) -> int:
    """``prompt_length`` as an int, or a ``ValueError`` unless ``0 <= prompt_length < seq_len``
    (the agent writes at least one token)."""
    if isinstance(prompt_length, bool) or not isinstance(prompt_length, (int, np.integer)):
        raise TypeError(f"prompt_length must be an integer, got {type(prompt_length).__name__}")
    if not 0 <= prompt_length < seq_len:
        raise ValueError(f"prompt_length must be in [0, seq_len) = [0, {seq_len}) so that the agent writes at "
                         f"least one token, got {prompt_length}")
    return int(prompt_length)


def check_prompt_groups(group_size: int | None, num_envs: int, prompt_length: int) -> int:
    """The number of consecutive rows that share a prompt (1 when ``group_size`` is ``None``),
    or a clear error: ``group_size`` must divide ``num_envs`` and needs ``prompt_length > 0``."""
    if group_size is None:
        return 1
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")
    if prompt_length == 0:
        raise ValueError(f"group_size={group_size} groups rows that share a prompt, and prompt_length is 0 (every "
                         "row already starts from the same empty prefix): pass prompt_length=k > 0, or leave "
                         "group_size out")
    if num_envs % group_size:
        raise ValueError(f"num_envs={num_envs} does not split into groups of group_size={group_size}: use a "
                         "multiple of group_size")
    return int(group_size)


@runtime_checkable
class PromptSource(Protocol):
    """Draws ``count`` prompts of ``prompt_length`` tokens from ``rng`` (the env's generator)."""

    prompt_length: int

    def __call__(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, prompt_length)`` int64 token ids."""


class UniformPrompts:
    """``prompt_length`` tokens drawn uniformly from ``[0, vocab_size)``, the end token excluded."""

    def __init__(self, prompt_length: int, vocab_size: int, eos_token: int | None = None) -> None:
        self.prompt_length = prompt_length
        self._choices = np.array([t for t in range(vocab_size) if t != eos_token], dtype=np.int64)

    def __call__(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return self._choices[rng.integers(0, len(self._choices), size=(count, self.prompt_length))]


class OraclePrompts:
    """The oracle's first ``prompt_length`` tokens (never its end token, if the env has one).

    One integer drawn from the env's generator seeds the torch generator of the draw, so a
    seeded env gives the same prompts on any device."""

    def __init__(self, oracle: TokenLSTM, prompt_length: int, eos_token: int | None = None) -> None:
        self.oracle, self.prompt_length, self.eos_token = oracle, prompt_length, eos_token

    def __call__(self, count: int, rng: np.random.Generator) -> np.ndarray:
        generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        empty = torch.zeros((count, 0), dtype=torch.long, device=self.oracle.device)
        tokens = complete(self.oracle, empty, generator, length=self.prompt_length, forbid=self.eos_token)
        return tokens.cpu().numpy().astype(np.int64)


class HeldOutPrompts:
    """The first ``prompt_length`` tokens of a held-out line (text), a line drawn uniformly
    among those that do not end within them.

    Args:
        held_out: ``(N, max_length)`` held-out sequences (:attr:`seqgan_env.text.Corpus.test`).
        prompt_length: tokens per prompt.
        eos_token: the end token; ``pad_token``: the filler after it (ids ``>= pad_token``).
    """

    def __init__(self, held_out: torch.Tensor, prompt_length: int, eos_token: int | None, pad_token: int) -> None:
        heads = np.asarray(held_out)[:, :prompt_length].astype(np.int64)
        usable = (heads < pad_token).all(axis=1)
        if eos_token is not None:
            usable &= (heads != eos_token).all(axis=1)
        if not usable.any():
            raise ValueError(f"no held-out line has {prompt_length} tokens before its end: use a shorter "
                             "prompt_length or a corpus with longer lines")
        self.prompts, self.prompt_length = heads[usable], prompt_length

    def __call__(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return self.prompts[rng.integers(0, len(self.prompts), size=count)].copy()


@torch.inference_mode()
def complete(model: TokenLSTM, prefixes: torch.Tensor, generator: torch.Generator | None = None,
             temperature: float = 1.0, length: int | None = None, forbid: int | None = None) -> torch.Tensor:
    """``model``'s continuations of ``prefixes`` ``(B, k)`` up to ``length`` tokens (default its
    ``seq_len``), ``(B, length)``: the prefixes, then tokens sampled at ``temperature``.

    After the model's end token (if it has one) a row holds PAD; ``forbid``: a token never drawn
    (the draw is conditioned on avoiding it). The prefixes must not hold the end token or PAD."""
    length = model.seq_len if length is None else length
    rows, k = prefixes.shape
    if not 0 <= k <= length:
        raise ValueError(f"prefixes of {k} tokens do not fit in {length}")
    generator = generator_on(generator, model.device)
    prefixes = prefixes.to(model.device)
    out = torch.full((rows, length), model.vocab_size, dtype=torch.long, device=model.device)
    out[:, :k] = prefixes
    logits, state = model.start(rows)
    for t in range(k):
        logits, state = model.step(prefixes[:, t], state)
    ended = torch.zeros(rows, dtype=torch.bool, device=model.device)
    for t in range(k, length):
        scores = logits.float()
        if forbid is not None:
            scores = scores.clone()
            scores[:, forbid] = float("-inf")
        token = sample_categorical(scores, generator, temperature)
        if model.eos_token is not None:
            token = token.masked_fill(ended, model.vocab_size)
            ended |= token == model.eos_token
        out[:, t] = token
        if t + 1 < length:
            logits, state = model.step(token.clamp(max=model.vocab_size - 1), state)
    return out.clone()


__all__ = ["HeldOutPrompts", "OraclePrompts", "PromptSource", "UniformPrompts", "check_prompt_groups",
           "check_prompt_length", "complete"]
