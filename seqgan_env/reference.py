"""How the Monte Carlo reward is computed: a short, readable reference implementation.

This is the place to read to understand SeqGAN's reward. For a finished sequence
``y_1 .. y_L`` the reward of step ``t`` (after token ``y_t`` was written) is::

    Q_t = 1/N * sum_n D(y_1 .. y_t, c^n_{t+1} .. c^n_L)     for t < L
    Q_L = D(y_1 .. y_L)

where ``c^n`` is the n-th of ``N`` completions of the prefix drawn from the rollout policy
and ``D(.)`` is the discriminator's probability that a sequence is real. It follows
``get_reward`` of the original SeqGAN code (Yu et al., 2017): for every rollout and every
prefix length it re-reads the prefix from the start token, samples the rest with a
multinomial draw and calls D once on the batch.

It is deliberately unoptimised. The environment's engine (:mod:`seqgan_env.rollout`,
:class:`seqgan_env.rewards.MonteCarloReward`) computes the same expectation far faster (it
continues from the cached state after the prefix, samples by inverse CDF and scores with a
decomposed D), and the tests check its rewards against this function.
"""

from __future__ import annotations

import torch

from seqgan_env.models import Discriminator, TokenLSTM


@torch.no_grad()
def reference_rewards(
    sequences: torch.Tensor,
    rollout_policy: TokenLSTM,
    discriminator: Discriminator,
    num_rollouts: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rewards ``(B, L)`` for every step of ``(B, L)`` finished sequences, the original way.

    Args:
        sequences: finished token sequences (no padding).
        rollout_policy: the policy that completes prefixes (a generator or a delayed copy).
        discriminator: scores sequences; used in evaluation mode (no dropout).
        num_rollouts: completions per prefix, ``N``.
        generator: the random generator of the completions.
    """
    batch, seq_len = sequences.shape
    was_training = discriminator.training
    discriminator.eval()
    rewards = torch.zeros(batch, seq_len)
    for _ in range(num_rollouts):
        for given in range(1, seq_len):
            # Re-read the prefix from the start token, as the original rollout graph does.
            state = rollout_policy.initial_state(batch)
            token = torch.full((batch,), rollout_policy.start_token, dtype=torch.long)
            completed = sequences.clone()
            for pos in range(seq_len):
                logits, state = rollout_policy.step(token, state)
                if pos < given:
                    token = sequences[:, pos]  # the prefix is given
                else:
                    token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
                    completed[:, pos] = token  # the rest is sampled
            rewards[:, given - 1] += discriminator.prob_real(completed)
        rewards[:, seq_len - 1] += discriminator.prob_real(sequences)  # the last step: D of the sequence itself
    discriminator.train(was_training)
    return rewards / num_rollouts


__all__ = ["reference_rewards"]
