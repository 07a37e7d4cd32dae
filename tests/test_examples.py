"""The worked example of writing one's own agent runs and learns."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np

from agents import collect_episodes
from tests.conftest import REPO


def load_example():
    spec = importlib.util.spec_from_file_location("custom_agent", REPO / "examples" / "custom_agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_agent_example_learns_and_round_trips(tmp_path):
    module = load_example()
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset="tiny", reward="oracle")
    agent = module.PositionalSoftmaxAgent(envs.unwrapped.seq_len, envs.unwrapped.vocab_size)
    returns = [agent.learn(collect_episodes(envs, agent, seed=u))["mean_return"] for u in range(25)]
    assert np.mean(returns[-5:]) > np.mean(returns[:5]) + 5.0
    agent.save(tmp_path / "agent.pt")
    loaded = module.PositionalSoftmaxAgent.load(tmp_path / "agent.pt")
    np.testing.assert_array_equal(loaded.logits.detach().numpy(), agent.logits.detach().numpy())


def test_rllib_example_runs_in_its_quick_mode(ray_local, capsys, one_thread):  # it sets 1 thread
    spec = importlib.util.spec_from_file_location("rllib_ppo", REPO / "examples" / "rllib_ppo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick"])
    assert result["env_steps"] == 32 * 8  # 32 sequences of the tiny preset's 8 tokens per iteration
    # Two PPO iterations on D's reward (a GAN reward) set no direction for NLL-oracle; both
    # evaluations draw the same seeded samples, so a difference beyond float noise is the
    # training's. Moved, by a margin:
    assert abs(result["nll_oracle_after"] - result["nll_oracle_before"]) > 1e-4
    assert "iteration 2: 256 env steps" in capsys.readouterr().out
