"""What every reward model is: :class:`RewardModel`, and the shared parts of those that ask a discriminator."""

from __future__ import annotations

import abc
from typing import ClassVar

import torch

from seqgan_env.devices import module_on, resolve_device
from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.prefix_discriminator import PrefixDiscriminator
from seqgan_env.precision import cpu_has_native_bf16
from seqgan_env.rewards.forms import check_reward_form, from_logits


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"`` means bfloat16 where matrix units run it fast (a CPU with AMX or AVX-512
    bf16, a CUDA GPU of compute capability 8.0 or more), else float32."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if _cuda_has_fast_bf16(device) else torch.float32
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    except KeyError:
        raise ValueError(f"compute dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}") from None


def _cuda_has_fast_bf16(device: torch.device) -> bool:
    # Before Ampere (8.0) bfloat16 is emulated or unsupported: slower than float32, not faster.
    return torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(device) >= (8, 0)


class RewardModel(abc.ABC):
    """Per-step rewards for a batch of token MDPs.

    The wrapper calls :meth:`bind` once with the batch size, :meth:`reset` when rows start a
    new episode, and :meth:`step` after every env step.

    Each class declares what its rewards mean, so that agents and experiments read the
    declaration instead of testing the class: :attr:`per_token` and :attr:`uses_rollout_policy`.
    """

    per_token: ClassVar[bool] = True
    """True: each step pays for its own token, and the episode's return is the objective (REINFORCE
    weights a token by the reward-to-go, an actor-critic discounts by ``gamma = 1``). False: each
    step's reward already estimates the episode's final outcome, the action value Q(s_t, a_t)
    (REINFORCE weights a token by its own step's reward, an actor-critic takes ``gamma = 0``)."""
    uses_rollout_policy: ClassVar[bool] = False
    """Whether the reward completes prefixes with a rollout policy (:meth:`set_rollout_policy`)."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.generator = torch.Generator(device=self.device)
        self.batch_size = 0

    def seed(self, seed: int) -> None:
        """Seed the randomness of the reward (Monte Carlo completions)."""
        self.generator.manual_seed(int(seed))

    def bind(self, batch_size: int) -> None:
        """Prepare per-row caches for ``batch_size`` envs."""
        self.batch_size = batch_size

    def reset(self, rows: torch.Tensor, prompts: torch.Tensor | None = None) -> None:  # noqa: B027 (optional)
        """Rows (bool mask) that start a new sequence: empty, or, with ``prompts`` ``(B, k)``, the
        row's prompt (tokens the agent did not write; rows outside the mask are ignored). The
        wrappers pass ``prompts`` only when the env has them: a reward that keeps per-row state
        and overrides this method with ``reset(rows)`` alone then fails loudly, rather than
        silently scoring from the empty prefix. Most rewards keep no per-row state."""

    @abc.abstractmethod
    def step(self, sequences: torch.Tensor, lengths: torch.Tensor, actions: torch.Tensor,
             finished: torch.Tensor) -> torch.Tensor:
        """Rewards ``(B,)`` after each row appended ``actions``.

        Args:
            sequences: ``(B, L)`` tokens after the action (padding past ``lengths``).
            lengths: ``(B,)`` lengths after the action.
            actions: ``(B,)`` the tokens just appended.
            finished: ``(B,)`` bool, rows whose sequence is now complete.
        """


def check_discriminator(discriminator: Discriminator, vocab_size: int | None, seq_len: int | None,
                         kind: type = Discriminator) -> None:
    """``discriminator`` must be a ``kind`` that reads ``vocab_size`` x ``seq_len`` (``None``: any)."""
    if not isinstance(discriminator, kind):
        if isinstance(discriminator, (Discriminator, PrefixDiscriminator)):
            raise ValueError(f"this reward needs a {kind.__name__}, got a {type(discriminator).__name__}")
        raise TypeError(f"expected a seqgan_env {kind.__name__}, got {type(discriminator).__name__}")
    if vocab_size is not None and discriminator.vocab_size != vocab_size:
        raise ValueError(f"discriminator reads a vocabulary of {discriminator.vocab_size} tokens, the env has {vocab_size}")
    if seq_len is not None and discriminator.seq_len != seq_len:
        raise ValueError(f"discriminator reads sequences of {discriminator.seq_len} tokens, the env has {seq_len}")


class DiscriminatorReward(RewardModel):
    """Shared parts of the rewards that ask a discriminator: ``form`` is what a scored sequence
    pays (:mod:`seqgan_env.rewards.forms`: ``probability``, the paper's, ``logit`` or ``log``)."""

    def __init__(self, discriminator: Discriminator, compute_dtype: str | torch.dtype = "auto",
                 device: str | torch.device = "cpu", form: str = "probability") -> None:
        super().__init__(device)
        check_discriminator(discriminator, None, None)
        self.discriminator = module_on(discriminator, self.device)  # the caller's model stays where it is
        self.compute_dtype = resolve_dtype(compute_dtype, self.device)
        self.form = check_reward_form(form)

    def set_discriminator(self, discriminator: Discriminator) -> None:
        """Use another discriminator from the next step on (e.g. after retraining D)."""
        check_discriminator(discriminator, self.discriminator.vocab_size, self.discriminator.seq_len)
        self.discriminator = module_on(discriminator, self.device)

    def _final_scores(self, sequences: torch.Tensor) -> torch.Tensor:
        return from_logits(self.discriminator.score(sequences, self.compute_dtype, logit=True), self.form)
