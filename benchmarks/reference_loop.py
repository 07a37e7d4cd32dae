"""The original SeqGAN reward loop, kept as the yardstick for the batched engine.

This mirrors ``get_reward`` of the original SeqGAN code (Yu et al., 2017): for each of N
rollouts and each prefix length ``g`` in ``1..L-1`` it re-runs the rollout policy over the
whole prefix, samples the rest of the sequence with a multinomial draw, and calls the
discriminator once on the batch; at ``g = L`` the discriminator scores the sequence itself.
It is deliberately unoptimised: it is what the project's engine is measured against, and
the reference that tests compare the engine's rewards with.
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
    """Rewards ``(B, L)`` for every step of ``(B, L)`` finished sequences, the original way."""
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
                    token = sequences[:, pos]
                else:
                    token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
                    completed[:, pos] = token
            rewards[:, given - 1] += discriminator.prob_real(completed)
        rewards[:, seq_len - 1] += discriminator.prob_real(sequences)
    discriminator.train(was_training)
    return rewards / num_rollouts
