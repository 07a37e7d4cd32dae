"""The rollout engine's per-row prefix states restart when a row starts a new episode.

A row that resets must read the start token (and its prompt) afresh, not carry on from the
previous episode's last token: the Monte Carlo reward's completions, the oracle's reward and the
reference penalty all read these states. Checked against states built from scratch, and through a
vector env's autoreset against the oracle's log-probabilities computed step by step.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from seqgan_env.rollout import PrefixStates, RolloutPolicy


def _replayed(policy, tokens: list[torch.Tensor], rows: int) -> torch.Tensor:
    states = PrefixStates(policy, rows)
    for token in tokens:
        states.advance(token)
    return states.logits


def test_reset_rows_restart_and_the_others_carry_on(tiny_models):
    # The oracle: its next-token distributions depend on the prefix far more than an untrained G's.
    generator = tiny_models["oracle"]
    assert isinstance(generator, RolloutPolicy)
    draw = torch.Generator().manual_seed(0)
    earlier = [torch.randint(generator.vocab_size, (4,), generator=draw) for _ in range(3)]
    after = torch.randint(generator.vocab_size, (4,), generator=draw)
    prompt = torch.randint(generator.vocab_size, (4, 2), generator=draw)
    rows = torch.tensor([True, False, True, False])
    for prompts in (None, prompt):
        states = PrefixStates(generator, 4)
        for token in earlier:
            states.advance(token)
        states.reset(rows, prompts)
        states.advance(after)
        restarted = _replayed(generator, ([] if prompts is None else list(prompts.unbind(1))) + [after], 4)
        carried = _replayed(generator, earlier + [after], 4)
        torch.testing.assert_close(states.logits[rows], restarted[rows])
        torch.testing.assert_close(states.logits[~rows], carried[~rows])
        # The two answers are far apart, so a reset that is ignored cannot pass.
        assert (restarted[rows] - carried[rows]).abs().max() > 0.5


def test_oracle_reward_of_a_second_episode_after_autoreset_is_its_own_log_likelihood(tiny_models):
    oracle = tiny_models["oracle"]
    envs = gymnasium.make_vec("SeqGAN-v0", num_envs=3, preset="tiny", reward="oracle", oracle=oracle)
    seq_len = oracle.seq_len
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    episodes: list[tuple[np.ndarray, np.ndarray]] = []
    actions, rewards = [], []
    for _ in range(2 * seq_len):
        action = rng.integers(envs.single_action_space.n, size=3)
        _, reward, terminated, truncated, _ = envs.step(action)
        actions.append(action)
        rewards.append(reward)
        if np.all(terminated | truncated):
            episodes.append((np.stack(actions, 1), np.stack(rewards, 1)))
            actions, rewards = [], []
    envs.close()
    assert len(episodes) == 2
    for tokens, paid in episodes:
        with torch.inference_mode():
            logits, state = oracle.start(3)
            expected = []
            for token in torch.as_tensor(tokens).unbind(1):
                expected.append(torch.log_softmax(logits, -1).gather(1, token.view(-1, 1)).squeeze(1))
                logits, state = oracle.step(token, state)
        np.testing.assert_allclose(paid, torch.stack(expected, 1).numpy(), rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
