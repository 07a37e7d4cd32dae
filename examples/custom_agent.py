"""Write your own agent for SeqGAN-v0: a tabular softmax policy over (position, token).

It ignores the prefix except for its length, so it is far weaker than an LSTM, but it shows
the whole interface in a page: act on a batch of observations, learn from finished episodes,
save and load. Run it:

    python examples/custom_agent.py
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from agents import Agent, EpisodeBatch, collect_episodes


class PositionalSoftmaxAgent(Agent):
    """pi(token | position) = softmax(theta[position]), trained by REINFORCE."""

    def __init__(self, seq_len: int, vocab_size: int, lr: float = 0.5, seed: int = 0) -> None:
        self.logits = torch.zeros(seq_len, vocab_size, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=lr)
        self.rng = np.random.default_rng(seed)
        self.pad = vocab_size

    def act(self, observations: np.ndarray) -> np.ndarray:
        position = (observations != self.pad).sum(axis=1)  # prefix length = next position
        probs = torch.softmax(self.logits.detach()[position], dim=-1).numpy().astype(np.float64)
        probs /= probs.sum(axis=1, keepdims=True)
        return np.array([self.rng.choice(len(p), p=p) for p in probs])

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        actions = torch.as_tensor(batch.actions).clamp(max=self.pad - 1)
        returns = torch.as_tensor(batch.returns(gamma=1.0))
        advantage = returns - returns.mean(dim=0, keepdim=True)  # batch-mean baseline
        log_probs = torch.log_softmax(self.logits, dim=-1).gather(1, actions.T).T  # (B, L)
        loss = -(log_probs * advantage * torch.as_tensor(batch.mask)).sum() / len(actions)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), "mean_return": float(returns[:, 0].mean())}

    def save(self, path: str | Path) -> None:
        torch.save({"logits": self.logits.detach()}, path)

    @classmethod
    def load(cls, path: str | Path, **kwargs) -> PositionalSoftmaxAgent:
        logits = torch.load(path, weights_only=True)["logits"]
        agent = cls(logits.shape[0], logits.shape[1], **kwargs)
        agent.logits.data.copy_(logits)
        return agent


def main() -> None:
    # The oracle's log-likelihood is a stationary reward: a good first check that learning works.
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset="tiny", reward="oracle")
    agent = PositionalSoftmaxAgent(envs.unwrapped.seq_len, envs.unwrapped.vocab_size)
    for update in range(1, 41):
        stats = agent.learn(collect_episodes(envs, agent, seed=update))
        if update % 10 == 0:
            print(f"update {update}: oracle log-likelihood per sequence {stats['mean_return']:.2f}")


if __name__ == "__main__":
    main()
