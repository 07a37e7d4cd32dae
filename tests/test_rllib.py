"""RLlib's PPO on SeqGAN-v0: the module starts as the generator, the env adapter, one PPO iteration."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("ray.rllib")

from agents.rllib import (  # noqa: E402
    NextStepAutoreset,
    SeqGANRLModule,
    env_steps,
    generator_spec,
    make_env,
    make_ppo,
    reward_wrappers,
)
from seqgan_env import SeqGANVectorEnv  # noqa: E402
from seqgan_env.models import Generator  # noqa: E402


def _module(generator, preset):
    envs = gym.make_vec("SeqGAN-v0", num_envs=1, preset=preset, reward="constant")
    return SeqGANRLModule(observation_space=envs.single_observation_space, action_space=envs.single_action_space,
                          model_config={"generator": generator_spec(generator)}, inference_only=False)


def test_the_module_starts_as_the_generator(tiny, trained_tiny):
    generator = trained_tiny["generator"]
    module = _module(generator, tiny)
    pad = tiny.vocab_size
    sequences = generator.sample(16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        # Step 0: the empty prefix gives the generator's first-token distribution.
        empty = torch.full((4, tiny.seq_len), pad)
        first = module.forward_exploration({"obs": empty})["action_dist_inputs"]
        expected, _ = generator.start(4)
        torch.testing.assert_close(torch.softmax(first, -1), torch.softmax(expected, -1))
        # Every later prefix: the generator's teacher-forced next-token distribution.
        teacher = generator(sequences)
        for t in range(1, tiny.seq_len):
            prefix = torch.cat([sequences[:, :t], torch.full((16, tiny.seq_len - t), pad)], dim=1)
            logits = module.forward_inference({"obs": prefix})["action_dist_inputs"]
            torch.testing.assert_close(torch.softmax(logits, -1), torch.softmax(teacher[:, t], -1))
        values = module.compute_values({"obs": sequences})
    assert values.shape == (16,)
    # A generator of another length is refused with the reason.
    with pytest.raises(ValueError, match="length"):
        _module(Generator(tiny.vocab_size, 16, 16, tiny.seq_len - 1), tiny)


def test_next_step_adapter_returns_whole_sequences_then_fresh_prefixes(tiny, tiny_models):
    env = make_env({"num_envs": 3, "preset": tiny, "reward": "constant"})
    assert isinstance(env, NextStepAutoreset)
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = env.reset(seed=0)
    actions = np.arange(tiny.seq_len * 3).reshape(tiny.seq_len, 3) % tiny.vocab_size
    for t in range(tiny.seq_len):
        obs, reward, terminated, truncated, _ = env.step(actions[t])
    assert terminated.all() and not truncated.any()
    np.testing.assert_array_equal(obs, actions.T)  # the finished sequences, not the reset rows
    assert reward.tolist() == [1.0, 1.0, 1.0]
    obs, reward, terminated, _, _ = env.step(np.zeros(3, dtype=np.int64))  # the autoreset step
    assert (obs == tiny.vocab_size).all() and not terminated.any() and (reward == 0).all()
    obs, *_ = env.step(np.full(3, 5))  # the new episode starts with this action
    assert obs[:, 0].tolist() == [5, 5, 5] and (obs[:, 1:] == tiny.vocab_size).all()
    # Single envs (RLlib's sync mode, for variable-length data) come without the adapter.
    assert not isinstance(make_env({"preset": tiny, "reward": "constant"}), NextStepAutoreset)


def test_a_ppo_iteration_runs_through_the_module_and_retrains_d(ray_local, tiny, trained_tiny_copy):
    models = trained_tiny_copy
    generator, discriminator = models["generator"], models["discriminator"]
    before = copy.deepcopy(generator.state_dict())
    d_before = copy.deepcopy(discriminator.state_dict())
    num_envs = 16
    algorithm = make_ppo(dict(preset=tiny, discriminator=discriminator, rollout_policy=copy.deepcopy(generator),
                              num_rollouts=2), generator, num_envs=num_envs, seed=0,
                         discriminator=discriminator, real=models["real"], num_negatives=200)
    try:
        module = algorithm.get_module()
        assert isinstance(module, SeqGANRLModule)
        result = algorithm.train()
        assert env_steps(result) == num_envs * tiny.seq_len  # one whole episode per env
        assert result["env_runners"]["episode_len_mean"] == tiny.seq_len
        assert 0 < result["env_runners"]["episode_return_mean"] <= tiny.seq_len  # D's probabilities, summed
        # The policy moved, and the driver's generator follows it exactly.
        moved = max(float((generator.state_dict()[k] - before[k]).abs().max()) for k in before)
        assert moved > 1e-4
        for key, value in algorithm.get_module().actor.state_dict().items():
            torch.testing.assert_close(generator.state_dict()[key], value)
        # The callback retrained D and put it (and the generator as rollout policy) into the env's reward.
        assert {"d_loss", "d_accuracy"} <= set(result["discriminator"])
        assert any(not torch.equal(discriminator.state_dict()[k], d_before[k]) for k in d_before)
        wrappers = reward_wrappers(algorithm.env_runner.env)
        assert len(wrappers) == 1 and isinstance(wrappers[0].unwrapped, SeqGANVectorEnv)  # the batched twin
        assert wrappers[0].reward_model.discriminator is discriminator
        assert wrappers[0].reward_model.rollout_policy is generator
    finally:
        algorithm.stop()


def _oracle_ppo(beta: float, num_envs: int, **training):
    """RLlib's PPO on the tiny oracle reward from a fresh generator, pi_ref a frozen copy of it."""
    from seqgan_env.presets import get_preset

    torch.manual_seed(0)
    generator = Generator.from_preset(get_preset("tiny"))
    reference = copy.deepcopy(generator).requires_grad_(False).eval()
    algorithm = make_ppo(dict(preset=get_preset("tiny"), reward="oracle"), generator, num_envs=num_envs, seed=0,
                         kl_beta=beta, reference=reference, **training)
    return algorithm, generator, reference


def test_kl_penalty_reaches_each_sampled_step(ray_local):
    from seqgan_env.factory import resolve_oracle
    from seqgan_env.presets import get_preset

    beta = 0.5
    algorithm, generator, reference = _oracle_ppo(beta, 4)
    try:
        episodes = algorithm.env_runner.sample()  # after KLPenaltyCallback.on_sample_end
        oracle = resolve_oracle(None, get_preset("tiny"))
        for episode in episodes:
            sequence = torch.as_tensor(np.asarray(episode.get_actions()))[None]
            with torch.no_grad():
                gold, log_ref = oracle.log_probs(sequence)[0].numpy(), reference.log_probs(sequence)[0].numpy()
                log_pi = generator.log_probs(sequence)[0].numpy()  # the policy that acted (no update yet)
            np.testing.assert_allclose(np.asarray(episode.get_rewards()), gold + beta * (log_ref - log_pi),
                                       rtol=1e-4, atol=1e-4)
    finally:
        algorithm.stop()


@pytest.mark.slow
def test_kl_penalty_keeps_rllib_ppo_nearer_its_reference(ray_local):
    from seqgan_env.divergence import kl_to_reference

    kls = []
    for beta in (0.0, 2.0):
        algorithm, generator, reference = _oracle_ppo(beta, 32, lr=3e-3)
        try:
            for _ in range(30):
                algorithm.train()
        finally:
            algorithm.stop()
        kls.append(kl_to_reference(generator, reference, 2000, torch.Generator().manual_seed(0)).kl)
    free, held = kls
    assert free > 6.0  # measured 11.3 (beta = 2: 1.8)
    assert held < 0.4 * free
