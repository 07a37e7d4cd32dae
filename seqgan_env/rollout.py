"""The batched Monte Carlo rollout engine shared by every reward and every env.

SeqGAN's reward for a prefix ``y_1..y_t`` (``t < L``) is the mean, over N completions drawn
from a rollout policy, of the discriminator's P(real) of the completed sequence. This module
computes it for a whole batch of prefixes at once:

* the rollout policy's state after each prefix is cached (:class:`PrefixStates`) and
  advanced by one token per env step, so completions start from it instead of re-reading
  the prefix;
* all ``B x N`` completions of a step are sampled together, one policy step per position,
  with an inverse-CDF sampler that computes a TokenLSTM policy's logits a chunk of rows at
  a time (:func:`~seqgan_env.sampling.sample_linear`);
* the discriminator pools the windows that lie inside the prefix once per prefix and only
  the windows that reach into the completion per completion (see
  :meth:`Discriminator.prefix_maxima`), in one batched call.

A single env is a batch of one; the vector env is a batch of ``num_envs``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from seqgan_env.allocator import tune_allocator
from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.sampling import sample_categorical, sample_linear

State = tuple[torch.Tensor, ...]
"""A rollout policy's recurrent state: a tuple of tensors whose first dimension is the batch."""


@runtime_checkable
class RolloutPolicy(Protocol):
    """What the Monte Carlo reward needs from a policy to complete prefixes.

    :class:`seqgan_env.models.Generator` meets it; so can an agent's policy.
    """

    def start(self, batch_size: int) -> tuple[torch.Tensor, State]:
        """Logits ``(batch, vocab)`` of the first token and the state after the start token."""

    def step(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Feed one token per row; logits of the next token and the new state."""


def _select(state: State, rows: torch.Tensor) -> State:
    return tuple(part[rows] for part in state)


def _repeat(state: State, times: int) -> State:
    return tuple(part.repeat_interleave(times, dim=0) for part in state)


def _where(mask: torch.Tensor, new: State, old: State) -> State:
    return tuple(torch.where(mask.view(-1, *([1] * (n.dim() - 1))), n, o) for n, o in zip(new, old))


class PrefixStates:
    """A policy's logits and state after each row's current prefix, kept step by step.

    Args:
        policy: the policy whose states are cached.
        batch_size: number of rows (envs).
    """

    def __init__(self, policy: RolloutPolicy, batch_size: int) -> None:
        tune_allocator()
        self.policy = policy
        self.batch_size = batch_size
        with torch.inference_mode():
            self.logits, self.state = policy.start(batch_size)
        self._fresh: torch.Tensor | None = None
        self._prompts: torch.Tensor | None = None  # (B, k): what fresh rows read after the start

    def reset(self, rows: torch.Tensor, prompts: torch.Tensor | None = None) -> None:
        """Put the rows selected by the bool mask ``rows`` back at the start of a sequence, or
        after their prompt (``prompts``: ``(B, k)`` tokens, one row per row of the batch).

        The start (and the prompt's replay) is computed lazily at the next :meth:`advance`: a
        training loop usually updates the policy between the reset and the next episode's first step.
        """
        self._fresh = rows.clone() if self._fresh is None else self._fresh | rows
        if prompts is not None:
            prompts = prompts.to(rows.device)
            if self._prompts is None or self._prompts.shape != prompts.shape:
                self._prompts = prompts.clone()
            else:
                self._prompts[rows] = prompts[rows]

    @torch.inference_mode()
    def sync(self) -> None:
        """Apply pending resets now (before reading :attr:`logits` directly)."""
        if self._fresh is None:
            return
        rows, self._fresh = self._fresh, None
        count = int(rows.sum())
        if count == self.batch_size:
            self.logits, self.state = self._start(rows)
        elif count:
            logits, state = self._start(rows)
            self.logits = self.logits.clone()
            self.logits[rows] = logits
            self.state = tuple(part.clone() for part in self.state)
            for mine, new in zip(self.state, state):
                mine[rows] = new

    def _start(self, rows: torch.Tensor) -> tuple[torch.Tensor, State]:
        """The logits and state of the selected rows after the start token and their prompt."""
        logits, state = self.policy.start(int(rows.sum()))
        if self._prompts is not None:
            for token in self._prompts[rows].unbind(1):
                logits, state = self.policy.step(token, state)
        return logits, state

    @torch.inference_mode()
    def advance(self, tokens: torch.Tensor) -> None:
        """Feed one token per row (every row)."""
        if self._fresh is not None:
            self.sync()
        self.logits, self.state = self.policy.step(tokens, self.state)

    @torch.inference_mode()
    def rebuild(self, sequences: torch.Tensor, lengths: torch.Tensor) -> None:
        """Recompute every row's state by replaying its prefix (after a policy swap)."""
        self._fresh = None
        logits, state = self.policy.start(sequences.shape[0])
        for pos in range(int(lengths.max()) if lengths.numel() else 0):
            live = lengths > pos
            new_logits, new_state = self.policy.step(sequences[:, pos].clamp(max=logits.shape[1] - 1), state)
            logits = torch.where(live.unsqueeze(1), new_logits, logits)
            state = _where(live, new_state, state)
        self.logits, self.state = logits, state


@torch.inference_mode()
def monte_carlo_rewards(
    discriminator: Discriminator,
    policy: RolloutPolicy,
    prefix_logits: torch.Tensor,
    prefix_state: State,
    sequences: torch.Tensor,
    lengths: torch.Tensor,
    num_rollouts: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    eos_token: int | None = None,
    pad_token: int | None = None,
    max_completions: int = 1024,
    prefix_max: torch.Tensor | None = None,
    form: str = "probability",
) -> torch.Tensor:
    """Mean P(real) (or another ``form`` of D's score) over ``num_rollouts`` completions of each unfinished prefix.

    Args:
        discriminator: scores completed sequences.
        policy: completes prefixes, starting from ``prefix_logits``/``prefix_state``.
        prefix_logits: ``(B, vocab)`` next-token logits after each prefix.
        prefix_state: the policy's state after each prefix (batch first).
        sequences: ``(B, L)`` token ids; positions at and past ``lengths`` are ignored.
        lengths: ``(B,)`` prefix lengths, each ``< L``.
        num_rollouts: completions per prefix (N).
        generator: randomness of the completions.
        dtype: compute type (float32 or bfloat16) of the discriminator's matrix products and of
            the rollout policy's output layer when it is a TokenLSTM.
        eos_token: if set, a completion ends when it emits it; later positions get ``pad_token``.
        pad_token: filler after an end-of-sequence token.
        max_completions: completions processed together; bounds memory.
        prefix_max: ``(B, features)`` :meth:`Discriminator.prefix_maxima` of the prefixes, if
            the caller keeps it up to date; computed here otherwise.
        form: what each completion pays (:mod:`seqgan_env.rewards.forms`): ``probability``
            (P(real), the paper's), ``logit`` or ``log``, each from D's logit.

    Returns:
        ``(B,)`` float32 rewards.
    """
    batch, seq_len = sequences.shape
    chunk = max(1, max_completions // num_rollouts)
    if batch > chunk:
        return torch.cat([
            monte_carlo_rewards(
                discriminator, policy, prefix_logits[i : i + chunk], _select(prefix_state, slice(i, i + chunk)),
                sequences[i : i + chunk], lengths[i : i + chunk], num_rollouts, generator, dtype,
                eos_token, pad_token, max_completions,
                None if prefix_max is None else prefix_max[i : i + chunk], form,
            )
            for i in range(0, batch, chunk)
        ])
    first = int(lengths.min())
    uniform = bool((lengths == first).all())
    if prefix_max is None:
        prefix_max = discriminator.prefix_maxima(sequences, lengths, dtype)

    completions = sequences.repeat_interleave(num_rollouts, dim=0)
    row_lengths = lengths.repeat_interleave(num_rollouts)
    ended = torch.zeros(completions.shape[0], dtype=torch.bool, device=completions.device)
    if eos_token is not None:  # an end token inside the prefix ends the sequence there
        inside = torch.arange(seq_len, device=completions.device) < row_lengths.unsqueeze(1)
        ended = ((completions == eos_token) & inside).any(dim=1)
    # A TokenLSTM policy hands over its output layer's input instead of logits, so each
    # draw computes the logits a chunk of rows at a time (they never leave the cache), in
    # the discriminator's compute type; any other policy gets plain step() and its logits.
    linear = isinstance(policy, TokenLSTM)
    if linear:
        weight = policy.output_weight(dtype)

        def draw(out: torch.Tensor) -> torch.Tensor:
            return sample_linear(out, weight, generator)

        def advance(tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
            return policy.step_features(tokens, state, dtype)
    else:
        def draw(out: torch.Tensor) -> torch.Tensor:
            return sample_categorical(out, generator)

        def advance(tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
            return policy.step(tokens, state)

    state = _repeat(prefix_state, num_rollouts)
    out = None  # the first draw of every completion comes from its prefix's logits
    for pos in range(first, seq_len):
        if out is None:
            token = sample_categorical(prefix_logits, generator, num_samples=num_rollouts).view(-1)
            if not uniform:  # rows with longer prefixes draw from their prefix later
                prefix_out = TokenLSTM.output_features(prefix_state[0], dtype) if linear else prefix_logits
                out = prefix_out.repeat_interleave(num_rollouts, dim=0)
        else:
            token = draw(out)
        fill = None if uniform else row_lengths <= pos
        if eos_token is not None:
            token = torch.where(ended, torch.full_like(token, pad_token), token)
        if fill is None:
            completions[:, pos] = token
        else:
            completions[:, pos] = torch.where(fill, token, completions[:, pos])
        if eos_token is not None:
            ended = ended | ((token == eos_token) & (fill if fill is not None else True))
        if pos + 1 < seq_len:
            step_tokens = completions[:, pos].clamp(max=prefix_logits.shape[1] - 1)
            new_out, new_state = advance(step_tokens, state)
            if fill is None:
                out, state = new_out, new_state
            else:
                out = torch.where(fill.unsqueeze(1), new_out, out)
                state = _where(fill, new_state, state)

    suffix_max = discriminator.window_maxima(completions, first, dtype)
    pooled = torch.maximum(suffix_max, prefix_max.repeat_interleave(num_rollouts, dim=0))
    from seqgan_env.rewards.forms import from_logits  # here: the rewards package imports this module

    scores = from_logits(discriminator.head(pooled, dtype, logit=True), form)
    return scores.view(batch, num_rollouts).mean(dim=1)
