"""Rewards scored by a learned discriminator: the paper's Monte Carlo reward, the terminal one, the dense one."""

from __future__ import annotations

import torch

from seqgan_env.devices import module_on
from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import LSTMState
from seqgan_env.models.prefix_discriminator import PrefixDiscriminator
from seqgan_env.rewards.base import DiscriminatorReward, RewardModel, check_discriminator
from seqgan_env.rewards.forms import check_reward_form, from_logits
from seqgan_env.rollout import PrefixStates, RolloutPolicy, monte_carlo_rewards


class TerminalReward(DiscriminatorReward):
    """D's P(real) of the finished sequence (or its ``form``: logit, log); 0 at every earlier step
    (per token: the return is the final score)."""

    def step(self, sequences, lengths, actions, finished):
        rewards = torch.zeros(sequences.shape[0], device=self.device)
        if bool(finished.any()):
            rewards[finished] = self._final_scores(sequences[finished])
        return rewards


class MonteCarloReward(DiscriminatorReward):
    """The paper's reward: mean P(real) of N Monte Carlo completions of each prefix.

    Args:
        discriminator: scores completed sequences.
        rollout_policy: completes prefixes (usually the generator or a delayed copy).
        num_rollouts: completions per step (16 in the paper).
        compute_dtype: ``"auto"``, ``"float32"`` or ``"bfloat16"`` for D's matrix products.
        eos_token: end-of-sequence id for text data (completions stop there), or ``None``.
        pad_token: id written after an end-of-sequence token.
        device: where the models run.
        form: what each scored completion pays: ``probability`` (P(real), the paper's), ``logit``
            or ``log`` (:mod:`seqgan_env.rewards.forms`); the reward is the mean over completions.
    """

    per_token = False  # each step's reward estimates the final P(real)
    uses_rollout_policy = True

    def __init__(self, discriminator: Discriminator, rollout_policy: RolloutPolicy, num_rollouts: int = 16,
                 compute_dtype: str | torch.dtype = "auto", eos_token: int | None = None,
                 pad_token: int | None = None, device: str | torch.device = "cpu", form: str = "probability") -> None:
        super().__init__(discriminator, compute_dtype, device, form)
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
                self.eos_token, self.pad_token, prefix_max=self._pooled_prefixes(sequences, lengths), form=self.form,
            )
        elif bool(open_rows.any()):
            state = tuple(part[open_rows] for part in self.prefixes.state)
            rewards[open_rows] = monte_carlo_rewards(
                self.discriminator, self.rollout_policy, self.prefixes.logits[open_rows], state,
                sequences[open_rows], lengths[open_rows], self.num_rollouts, self.generator,
                self.compute_dtype, self.eos_token, self.pad_token, form=self.form,
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
    (the LSTM is small; reduced precision would buy nothing). Rewards are in (0, 1) in the
    ``probability`` form.

    Args:
        discriminator: a :class:`~seqgan_env.models.PrefixDiscriminator` (a CNN
            :class:`~seqgan_env.models.Discriminator` is refused: it cannot score prefixes).
        device: where D runs.
        form: ``probability`` (P(real | prefix)), ``logit`` or ``log`` (:mod:`seqgan_env.rewards.forms`).
    """

    per_token = False  # P(real | prefix): like the Monte Carlo reward, an estimate of the final P(real)

    def __init__(self, discriminator: PrefixDiscriminator, device: str | torch.device = "cpu",
                 form: str = "probability") -> None:
        super().__init__(device)
        check_discriminator(discriminator, None, None, PrefixDiscriminator)
        self.form = check_reward_form(form)
        self.discriminator = module_on(discriminator, self.device)  # the caller's model stays where it is
        self.state: LSTMState | None = None
        self._weights: tuple | None = None  # D's weights that computed ``state``

    def set_discriminator(self, discriminator: PrefixDiscriminator) -> None:
        """Score with another prefix discriminator from the next step on (e.g. after retraining D)."""
        check_discriminator(discriminator, self.discriminator.vocab_size, self.discriminator.seq_len,
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
        return from_logits(logits, self.form)

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
