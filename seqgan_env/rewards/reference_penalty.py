"""The reference's half of a KL-regularised reward, as a wrapper any Gymnasium agent gets.

Fine-tuning a policy against a learned reward keeps it near a reference pi_ref (the MLE
generator the run started from) by paying, at each step (Ziegler et al. 2019; Stiennon et
al. 2020)::

    r_t - beta * (log pi(y_t | y_<t) - log pi_ref(y_t | y_<t))

Summed over an episode, the penalty is beta times a one-sample estimate of KL(pi || pi_ref).
The term ``+ beta * log pi_ref(y_t | y_<t)`` depends on the action and the prefix only, so it
belongs to the environment: :class:`ReferencePenaltyWrapper` (single env) and
:class:`ReferencePenaltyVectorWrapper` (vector env) add it to the wrapped env's reward. The
term ``- beta * log pi(y_t | y_<t)`` needs the agent's own policy, so it belongs where the
agent computes log pi (``kl_beta`` of every agent: :mod:`agents.kl_penalty`). With ``beta = 0`` the wrappers
return the wrapped env's rewards unchanged.

Each step's info carries the term added, under :data:`REFERENCE_TERM` (for a vector env's
finished rows, in ``final_info`` too, where SB3's adapter reads a finished step's info): an
agent whose per-step rewards estimate the final outcome (the Monte Carlo reward) needs the
penalty apart from the outcome, to weight each token by the penalties still to come.

The reference's state after each row's prefix is kept step by step
(:class:`~seqgan_env.rollout.PrefixStates`), so a step costs one reference step per row.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv, VectorWrapper

from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.rollout import PrefixStates

REFERENCE_TERM = "reference_term"
"""The info key of the term ``beta * log pi_ref(y_t | y_<t)`` a wrapper added to the step's reward."""


def _check(reference: TokenLSTM, beta: float, vocab_size: int) -> None:
    if not beta >= 0.0:  # also rejects NaN
        raise ValueError(f"beta must be >= 0, got {beta}")
    if reference.vocab_size != vocab_size:
        raise ValueError(f"the reference has a vocabulary of {reference.vocab_size}, the env {vocab_size}")


class _ReferenceTerm:
    """``beta * log pi_ref(action | prefix)`` for each row, following the rows' prefixes."""

    def __init__(self, reference: TokenLSTM, beta: float, rows: int) -> None:
        self.reference = reference
        self.beta = float(beta)
        self.states = PrefixStates(reference, rows) if self.beta else None

    def restart(self, rows: np.ndarray | None = None, obs: np.ndarray | None = None, prompt_length: int = 0) -> None:
        """Put every row (``None``) or the rows of a bool mask back at the empty prefix, or after
        their prompt: the first ``prompt_length`` tokens of ``obs``, the observations they start from."""
        if self.states is None:
            return
        device = self.reference.device
        mask = torch.ones(self.states.batch_size, dtype=torch.bool, device=device) if rows is None \
            else torch.as_tensor(rows, device=device)
        prompts = None
        if prompt_length and obs is not None:
            prompts = torch.as_tensor(obs[..., :prompt_length], device=device).view(self.states.batch_size, -1)
        self.states.reset(mask, prompts)

    @torch.inference_mode()
    def __call__(self, actions: np.ndarray) -> np.ndarray:
        """The term for ``actions`` ``(rows,)`` taken after the current prefixes; then advance."""
        assert self.states is not None
        self.states.sync()
        tokens = torch.as_tensor(actions, dtype=torch.long, device=self.reference.device)
        log_probs = torch.log_softmax(self.states.logits.float(), dim=-1)
        term = self.beta * log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
        self.states.advance(tokens)
        return term.double().cpu().numpy()


class ReferencePenaltyWrapper(gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.int64]):
    """Adds ``beta * log pi_ref(y_t | y_<t)`` to each step's reward of a single env.

    Args:
        env: a single SeqGAN env (any reward).
        reference: pi_ref, e.g. a frozen copy of the MLE generator the run starts from.
        beta: the KL coefficient; 0 leaves the rewards as they are.
    """

    def __init__(self, env: gym.Env[np.ndarray, np.int64], reference: TokenLSTM, beta: float) -> None:
        super().__init__(env)
        _check(reference, beta, int(env.unwrapped.vocab_size))
        self.beta = float(beta)
        self._term = _ReferenceTerm(reference, beta, 1)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._term.restart(None, obs, getattr(self.env.unwrapped, "prompt_length", 0))
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.beta:
            term = float(self._term(np.asarray(action, dtype=np.int64).reshape(1))[0])
            reward = float(reward) + term
            info = {**info, REFERENCE_TERM: term}
        return obs, reward, terminated, truncated, info


class ReferencePenaltyVectorWrapper(VectorWrapper):
    """Adds ``beta * log pi_ref(y_t | y_<t)`` to each row's reward of a vector env.

    Rows that finish are reset by the env in the same step (``SAME_STEP`` autoreset); their
    reference state goes back to the empty prefix (or their new prompt) with them. Arguments as
    :class:`ReferencePenaltyWrapper`.
    """

    def __init__(self, env: VectorEnv, reference: TokenLSTM, beta: float) -> None:
        super().__init__(env)
        _check(reference, beta, int(env.unwrapped.vocab_size))
        self.beta = float(beta)
        self._term = _ReferenceTerm(reference, beta, self.num_envs)

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._term.restart(None, obs, getattr(self.env.unwrapped, "prompt_length", 0))
        return obs, info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        if self.beta:
            terms = self._term(np.asarray(actions, dtype=np.int64).reshape(-1))
            rewards = rewards + terms
            finished = np.asarray(terminated | truncated)
            every = np.ones(self.num_envs, dtype=bool)
            info = {**info, REFERENCE_TERM: terms, f"_{REFERENCE_TERM}": every}
            if finished.any():
                self._term.restart(finished, obs, getattr(self.env.unwrapped, "prompt_length", 0))
                final = {**info.get("final_info", {}), REFERENCE_TERM: terms, f"_{REFERENCE_TERM}": finished}
                info.update(final_info=final, _final_info=finished | info.get("_final_info", False))
        return obs, rewards, terminated, truncated, info


def with_reference_penalty(env: Any, reference: TokenLSTM, beta: float) -> Any:
    """``env`` (single or vector) wrapped in the matching reference-penalty wrapper."""
    if isinstance(env, VectorEnv):
        return ReferencePenaltyVectorWrapper(env, reference, beta)
    return ReferencePenaltyWrapper(env, reference, beta)


__all__ = ["REFERENCE_TERM", "ReferencePenaltyVectorWrapper", "ReferencePenaltyWrapper", "with_reference_penalty"]
