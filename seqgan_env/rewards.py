"""Reward models: what the reward wrappers compute, for a batch of envs at once.

Every reward model works on a batch: the single-env wrapper passes a batch of one, the
vector-env wrapper a batch of ``num_envs``. All of them read the same two inputs after each
env step: the sequences so far and their lengths, plus which rows just finished.

* :class:`MonteCarloReward`: the paper's reward. For an unfinished prefix, the mean P(real)
  of N completions drawn from a rollout policy; for a finished sequence, its own P(real).
* :class:`TerminalReward`: sparse; P(real) of the finished sequence, 0 before.
* :class:`DensePrefixReward`: P(real | y_<=t) after every step from a
  :class:`~seqgan_env.models.PrefixDiscriminator`, which scores every prefix (ScratchGAN's
  discriminator, de Masson d'Autume et al., 2019): no Monte Carlo rollouts.
* :class:`OracleLikelihoodReward`: stationary; the oracle's log-probability of each token,
  so an episode's return is the sequence's log-likelihood under the oracle (of the agent's
  tokens given the prompt, when the env has prompts).
* :class:`ConstantReward` and :class:`RandomReward`: rewards that carry no information about
  the sequence, as controls: how much of a method's gain comes from the discriminator at all.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch

from seqgan_env.devices import module_on, resolve_device
from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import LSTMState
from seqgan_env.models.oracle import Oracle
from seqgan_env.models.prefix_discriminator import PrefixDiscriminator
from seqgan_env.precision import cpu_has_native_bf16
from seqgan_env.rollout import PrefixStates, RolloutPolicy, monte_carlo_rewards


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


def _check_discriminator(discriminator: Discriminator, vocab_size: int | None, seq_len: int | None,
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


class _DiscriminatorReward(RewardModel):
    """Shared parts of the rewards that ask a discriminator."""

    def __init__(self, discriminator: Discriminator, compute_dtype: str | torch.dtype = "auto",
                 device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        _check_discriminator(discriminator, None, None)
        self.discriminator = module_on(discriminator, self.device)  # the caller's model stays where it is
        self.compute_dtype = resolve_dtype(compute_dtype, self.device)

    def set_discriminator(self, discriminator: Discriminator) -> None:
        """Use another discriminator from the next step on (e.g. after retraining D)."""
        _check_discriminator(discriminator, self.discriminator.vocab_size, self.discriminator.seq_len)
        self.discriminator = module_on(discriminator, self.device)

    def _final_scores(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.discriminator.score(sequences, self.compute_dtype)


class TerminalReward(_DiscriminatorReward):
    """D's P(real) of the finished sequence; 0 at every earlier step (per token: the return is the final P(real))."""

    def step(self, sequences, lengths, actions, finished):
        rewards = torch.zeros(sequences.shape[0], device=self.device)
        if bool(finished.any()):
            rewards[finished] = self._final_scores(sequences[finished])
        return rewards


class MonteCarloReward(_DiscriminatorReward):
    """The paper's reward: mean P(real) of N Monte Carlo completions of each prefix.

    Args:
        discriminator: scores completed sequences.
        rollout_policy: completes prefixes (usually the generator or a delayed copy).
        num_rollouts: completions per step (16 in the paper).
        compute_dtype: ``"auto"``, ``"float32"`` or ``"bfloat16"`` for D's matrix products.
        eos_token: end-of-sequence id for text data (completions stop there), or ``None``.
        pad_token: id written after an end-of-sequence token.
        device: where the models run.
    """

    per_token = False  # each step's reward estimates the final P(real)
    uses_rollout_policy = True

    def __init__(self, discriminator: Discriminator, rollout_policy: RolloutPolicy, num_rollouts: int = 16,
                 compute_dtype: str | torch.dtype = "auto", eos_token: int | None = None,
                 pad_token: int | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(discriminator, compute_dtype, device)
        if num_rollouts < 1:
            raise ValueError(f"num_rollouts must be at least 1, got {num_rollouts}")
        self.num_rollouts = int(num_rollouts)
        self.rollout_policy = self._on_device(rollout_policy)
        self.eos_token = eos_token
        self.pad_token = discriminator.pad_token if pad_token is None else pad_token
        self.prefixes: PrefixStates | None = None
        self._stale = False
        # D's pooled features of the prefix windows, followed one token at a time.
        self._prefix_max: torch.Tensor | None = None
        self._prefix_key: tuple | None = None

    def set_rollout_policy(self, policy: RolloutPolicy) -> None:
        """Complete prefixes with another policy from the next step on."""
        if not isinstance(policy, RolloutPolicy):
            raise TypeError(f"a rollout policy needs start() and step(); got {type(policy).__name__}")
        self.rollout_policy = self._on_device(policy)
        self._stale = True

    def _on_device(self, policy: RolloutPolicy) -> RolloutPolicy:
        """A torch policy on another device is copied here (the caller's stays where it is)."""
        return module_on(policy, self.device) if isinstance(policy, torch.nn.Module) else policy

    def bind(self, batch_size: int) -> None:
        super().bind(batch_size)
        self.prefixes = PrefixStates(self.rollout_policy, batch_size)
        self._stale = False

    def reset(self, rows, prompts=None):
        if self.prefixes is None or self.prefixes.batch_size != rows.shape[0]:
            self.bind(rows.shape[0])
            if prompts is not None:
                self.prefixes.reset(rows, prompts)
        elif not self._stale:  # a stale cache is rebuilt from the sequences at the next step
            self.prefixes.reset(rows, prompts)
        if prompts is not None:
            self._prefix_key = None  # D's pooled prefixes restart from the prompts

    def step(self, sequences, lengths, actions, finished):
        if self.prefixes is None:
            raise RuntimeError("reset() must be called before step()")
        if self._stale:
            self.prefixes = PrefixStates(self.rollout_policy, sequences.shape[0])
            self.prefixes.rebuild(sequences, lengths)
            self._stale = False
        else:
            self.prefixes.advance(actions)
        rewards = torch.empty(sequences.shape[0], device=self.device)
        if bool(finished.any()):
            rewards[finished] = self._final_scores(sequences[finished])
        open_rows = ~finished
        if bool(open_rows.all()):
            rewards = monte_carlo_rewards(
                self.discriminator, self.rollout_policy, self.prefixes.logits, self.prefixes.state,
                sequences, lengths, self.num_rollouts, self.generator, self.compute_dtype,
                self.eos_token, self.pad_token, prefix_max=self._pooled_prefixes(sequences, lengths),
            )
        elif bool(open_rows.any()):
            state = tuple(part[open_rows] for part in self.prefixes.state)
            rewards[open_rows] = monte_carlo_rewards(
                self.discriminator, self.rollout_policy, self.prefixes.logits[open_rows], state,
                sequences[open_rows], lengths[open_rows], self.num_rollouts, self.generator,
                self.compute_dtype, self.eos_token, self.pad_token,
            )
        return rewards

    def _pooled_prefixes(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """D's prefix maxima, updated by one window per filter when every row grew by one."""
        disc, dtype = self.discriminator, self.compute_dtype
        length = int(lengths[0])
        uniform = bool((lengths == length).all())
        key = (id(disc), disc.weights_key(dtype))
        if uniform and length == 1:
            self._prefix_max = disc.last_window_maxima(sequences, 1, dtype)
        elif (uniform and self._prefix_max is not None and self._prefix_key == (key, length - 1)
              and self._prefix_max.shape[0] == sequences.shape[0]):
            self._prefix_max = torch.maximum(self._prefix_max, disc.last_window_maxima(sequences, length, dtype))
        else:
            self._prefix_max = disc.prefix_maxima(sequences, lengths, dtype)
        self._prefix_key = (key, length if uniform else None)
        return self._prefix_max


class DensePrefixReward(RewardModel):
    """P(real | y_<=t) after every step, from a discriminator that scores every prefix.

    The reward of step t is the :class:`~seqgan_env.models.PrefixDiscriminator`'s probability
    that the prefix written so far is real (as in ScratchGAN, de Masson d'Autume et al., 2019):
    a dense reward with no Monte Carlo rollouts. It is computed incrementally: each row keeps
    D's LSTM state, so a step costs one LSTM step per row; rows that start a new episode start
    from D's initial state. When D changes (:meth:`set_discriminator`, or its weights retrained
    in place) the states are rebuilt from the sequences at the next step. Computed in float32
    (the LSTM is small; reduced precision would buy nothing). Rewards are in (0, 1).

    Args:
        discriminator: a :class:`~seqgan_env.models.PrefixDiscriminator` (a CNN
            :class:`~seqgan_env.models.Discriminator` is refused: it cannot score prefixes).
        device: where D runs.
    """

    per_token = False  # P(real | prefix): like the Monte Carlo reward, an estimate of the final P(real)

    def __init__(self, discriminator: PrefixDiscriminator, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        _check_discriminator(discriminator, None, None, PrefixDiscriminator)
        self.discriminator = module_on(discriminator, self.device)  # the caller's model stays where it is
        self.state: LSTMState | None = None
        self._weights: tuple | None = None  # D's weights that computed ``state``

    def set_discriminator(self, discriminator: PrefixDiscriminator) -> None:
        """Score with another prefix discriminator from the next step on (e.g. after retraining D)."""
        _check_discriminator(discriminator, self.discriminator.vocab_size, self.discriminator.seq_len,
                             PrefixDiscriminator)
        self.discriminator = module_on(discriminator, self.device)
        self._weights = None  # the states were computed by the old D: rebuilt at the next step

    def bind(self, batch_size: int) -> None:
        super().bind(batch_size)
        self.state = self.discriminator.initial_state(batch_size)
        self._weights = self.discriminator.weights_key()

    def reset(self, rows, prompts=None):
        if self.state is None or self.state[0].shape[0] != rows.shape[0]:
            self.bind(rows.shape[0])
        else:
            keep = ~rows.to(self.device).unsqueeze(1)
            self.state = tuple(part * keep for part in self.state)  # zero = the initial state
        if prompts is not None:
            self._weights = None  # D's states after the prompts: rebuilt from the sequences at the next step

    def step(self, sequences, lengths, actions, finished):
        if self.state is None:
            raise RuntimeError("reset() must be called before step()")
        disc = self.discriminator
        with torch.no_grad():
            weights = disc.weights_key()
            if self._weights != weights:
                logits, self.state = self._rebuild(sequences, lengths)
                self._weights = weights
            else:
                logits, self.state = disc.step(actions, self.state)
        return torch.sigmoid(logits)

    def _rebuild(self, sequences: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, LSTMState]:
        """Each row's state after its ``lengths[i]`` tokens, and the logit at its last one."""
        disc = self.discriminator
        rows = sequences.shape[0]
        h, c = disc.initial_state(rows)
        logits = torch.zeros(rows, device=self.device)
        for t in range(int(lengths.max())):
            step_logits, (h_t, c_t) = disc.step(sequences[:, t], (h, c))
            inside = (t < lengths).unsqueeze(1)
            h, c = torch.where(inside, h_t, h), torch.where(inside, c_t, c)
            logits = torch.where(lengths == t + 1, step_logits, logits)
        return logits, (h, c)


class OracleLikelihoodReward(RewardModel):
    """The oracle's log-probability of each chosen token (a stationary, dense reward).

    The return of an episode is the sequence's log-likelihood under the oracle, so
    maximising it lowers NLL-oracle directly. Rewards are ``<= 0``.
    """

    def __init__(self, oracle: Oracle, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        if not isinstance(oracle, Oracle):
            raise TypeError(f"expected a seqgan_env Oracle, got {type(oracle).__name__}")
        self.oracle = module_on(oracle, self.device)
        self.prefixes: PrefixStates | None = None

    def bind(self, batch_size):
        super().bind(batch_size)
        self.prefixes = PrefixStates(self.oracle, batch_size)

    def reset(self, rows, prompts=None):
        if self.prefixes is None or self.prefixes.batch_size != rows.shape[0]:
            self.bind(rows.shape[0])
            if prompts is not None:
                self.prefixes.reset(rows, prompts)
        else:
            self.prefixes.reset(rows, prompts)

    def step(self, sequences, lengths, actions, finished):
        if self.prefixes is None:
            raise RuntimeError("reset() must be called before step()")
        self.prefixes.sync()
        with torch.inference_mode():
            log_probs = torch.log_softmax(self.prefixes.logits, dim=-1)
            rewards = log_probs.gather(1, actions.view(-1, 1)).squeeze(1)
        self.prefixes.advance(actions)
        return rewards


class ConstantReward(RewardModel):
    """The same reward ``value`` after every token, whatever the sequence (a control)."""

    per_token = False  # a control stands in for the discriminator's reward, and is weighted as it is

    def __init__(self, value: float = 1.0, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.value = float(value)

    def step(self, sequences, lengths, actions, finished):
        return torch.full((sequences.shape[0],), self.value, device=self.device)


class RandomReward(RewardModel):
    """An independent uniform [0, 1) reward after every token (a control), seeded by :meth:`seed`."""

    per_token = False  # a control stands in for the discriminator's reward, and is weighted as it is

    def step(self, sequences, lengths, actions, finished):
        return torch.rand(sequences.shape[0], generator=self.generator, device=self.device)
