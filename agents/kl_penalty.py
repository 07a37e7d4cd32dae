"""The policy's half of the KL-regularised reward, for agents that learn from per-step rewards.

With a coefficient beta, each step pays (Ziegler et al. 2019; Stiennon et al. 2020)::

    r_t - beta * (log pi(y_t | y_<t) - log pi_ref(y_t | y_<t))

The reference's term ``+ beta * log pi_ref`` comes from the env's wrapper
(:mod:`seqgan_env.rewards.reference_penalty`, which also reports it in each step's info); the policy's
term is added here, where the agent has log pi of the actions it took. How the penalties enter
the weight of a token depends on what the env's rewards are:

* additive rewards (a per-token reward such as the oracle's log-likelihood; the weight of a
  token is its reward-to-go, SB3's ``gamma = 1``): the penalty is one more reward per step,
  so each step's reward becomes ``r_t - beta * log pi(y_t)`` and the returns add it up;
* rewards that each estimate the episode's final outcome (the paper's Monte Carlo reward: the
  weight of token ``t`` is its own ``Q_t``, SB3's ``gamma = 0``): the penalties are still
  additive, so token ``t`` is weighted by ``Q_t`` plus the penalties from ``t`` to the
  episode's end. ``Q_t`` is the reward less the wrapper's term, read from the info.
"""

from __future__ import annotations

import numpy as np


def kl_regularised_rewards(rewards: np.ndarray, log_probs: np.ndarray, beta: float, starts: np.ndarray,
                           reference_terms: np.ndarray | None = None, additive: bool = True) -> np.ndarray:
    """Per-step rewards with the policy's KL term, ``(T, N)`` float64, time first.

    Args:
        rewards: ``(T, N)`` the env's rewards (with the wrapper's reference term, if wrapped).
        log_probs: ``(T, N)`` log pi of each taken action (0 at steps that are not part of an episode).
        beta: the KL coefficient.
        starts: ``(T, N)`` bool, whether step ``t`` begins an episode (SB3's ``episode_starts``).
        reference_terms: ``(T, N)`` the part of ``rewards`` the reference wrapper added, or
            ``None`` (no wrapper: 0).
        additive: the rewards add up to the objective (see the module's docstring); otherwise
            each estimates the final outcome, and step ``t`` gets ``Q_t`` plus the KL penalties
            from ``t`` to the end of its episode (within the given steps).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    policy_terms = -beta * np.asarray(log_probs, dtype=np.float64)
    if additive:
        return rewards + policy_terms
    reference = np.zeros_like(rewards) if reference_terms is None else np.asarray(reference_terms, np.float64)
    penalties, outcome = reference + policy_terms, rewards - reference
    out = np.empty_like(rewards)
    later = np.zeros(rewards.shape[1:])
    for t in range(rewards.shape[0] - 1, -1, -1):
        if t + 1 < rewards.shape[0]:  # a step that begins an episode ends the sum of the one before
            later = np.where(starts[t + 1], 0.0, later)
        later = later + penalties[t]
        out[t] = outcome[t] + later
    return out


__all__ = ["kl_regularised_rewards"]
