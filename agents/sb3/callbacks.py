"""SB3 callbacks: retraining D between rollouts (SeqGAN's adversarial half), and the KL penalty."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

import seqgan_env
from agents.kl_penalty import kl_regularised_rewards
from agents.sb3.adapter import seqgan_vector_env
from seqgan_env.models import Discriminator
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.precision import adam
from seqgan_env.rewards.reference_penalty import REFERENCE_TERM


class DiscriminatorRetrainCallback(BaseCallback):
    """SeqGAN's D-step between generator updates: retrain D on each rollout's sequences.

    While the algorithm collects a rollout, the callback keeps the finished sequences (SB3's
    ``infos[i]["terminal_observation"]``: the last observation of an episode is its whole
    sequence). At the rollout's end, before the policy update, it trains ``discriminator``
    in place on them (label 0) against as many real sequences (label 1) for ``epochs``
    epochs with its own Adam optimizer, then puts it into the env's reward with
    :func:`seqgan_env.set_discriminator`, so the update and the next rollout see the new D.
    Logs ``discriminator/d_loss`` (mean loss of the last epoch) and
    ``discriminator/d_accuracy`` (accuracy over the last epoch's batches).

    Args:
        discriminator: D, trained in place.
        real: ``(N, seq_len)`` real sequences to draw positives from.
        epochs: epochs over (real + generated) per rollout.
        batch_size: sequences per gradient step.
        lr: Adam learning rate (1e-4, the paper's).
        seed: seed of the draws of positives and of the shuffling.
        verbose: SB3 verbosity.
    """

    def __init__(self, discriminator: Discriminator, real: torch.Tensor, epochs: int = 3, batch_size: int = 64,
                 lr: float = 1e-4, seed: int = 0, verbose: int = 0) -> None:
        super().__init__(verbose)
        if real.ndim != 2 or real.shape[1] != discriminator.seq_len:
            raise ValueError(f"real must be (N, {discriminator.seq_len}) token ids, got shape {tuple(real.shape)}")
        self.discriminator = discriminator
        self.real = real.to(discriminator.device)
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = adam(discriminator.parameters(), lr)
        self.rng = torch.Generator().manual_seed(seed)
        self._finished: list[np.ndarray] = []

    def _init_callback(self) -> None:
        seqgan_env.reward_wrapper(seqgan_vector_env(self.training_env))  # fail now, not after a rollout

    def _on_rollout_start(self) -> None:
        self._finished = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "terminal_observation" in info:
                self._finished.append(info["terminal_observation"])
        return True

    def _on_rollout_end(self) -> None:
        if not self._finished:
            return
        fake = torch.as_tensor(np.stack(self._finished), device=self.discriminator.device)
        stats = self.train_discriminator(fake)
        seqgan_env.set_discriminator(seqgan_vector_env(self.training_env), self.discriminator)
        for name, value in stats.items():
            self.logger.record(f"discriminator/{name}", value)

    def train_discriminator(self, fake: torch.Tensor) -> dict[str, float]:
        """``epochs`` epochs on ``fake`` (label 0) and as many random real sequences (label 1)."""
        picks = torch.randint(self.real.shape[0], (fake.shape[0],), generator=self.rng).to(self.real.device)
        return fit_discriminator(self.discriminator, self.real[picks], fake, self.epochs, self.optimizer,
                                 self.batch_size, self.rng)


class KLPenaltyCallback(BaseCallback):
    """The policy's half of the KL-regularised reward for PPO/A2C: ``- beta * log pi(a_t | s_t)``.

    At the rollout's end (after SB3 computed the returns, before the update) it adds the term
    to each step's reward in the rollout buffer, from the log-probabilities the buffer recorded
    while acting, and recomputes the returns and advantages
    (``rollout_buffer.compute_returns_and_advantage``) with the rollout's last values. The
    reference's half, ``+ beta * log pi_ref``, is the env's wrapper
    (:func:`seqgan_env.rewards.reference_penalty.with_reference_penalty`); for a reward that estimates
    the final outcome (``gamma = 0``) each step also gets the penalties still to come in its
    episode (:func:`agents.kl_penalty.kl_regularised_rewards`), read from the steps' infos.

    Args:
        beta: the KL coefficient (> 0).
        verbose: SB3 verbosity.
    """

    def __init__(self, beta: float, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not beta > 0.0:
            raise ValueError(f"the KL penalty's beta must be > 0, got {beta}")
        self.beta = float(beta)
        self._terms: list[np.ndarray] = []
        self._additive = True

    def _init_callback(self) -> None:
        self._additive = bool(seqgan_env.reward_wrapper(seqgan_vector_env(self.training_env)).reward_model.per_token)

    def _on_rollout_start(self) -> None:
        self._terms = []

    def _on_step(self) -> bool:
        self._terms.append(np.array([float(info.get(REFERENCE_TERM, 0.0)) for info in self.locals["infos"]]))
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        terms = np.stack(self._terms) if len(self._terms) == buffer.rewards.shape[0] else None
        buffer.rewards[:] = kl_regularised_rewards(buffer.rewards, buffer.log_probs, self.beta,
                                                   buffer.episode_starts.astype(bool), terms, self._additive)
        buffer.compute_returns_and_advantage(last_values=self.locals["values"], dones=self.locals["dones"])
        self.logger.record("train/kl_penalty_beta", self.beta)
