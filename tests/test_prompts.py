"""Prompted episodes (``prompt_length``) and prompt groups (``group_size``): the env, the rewards
given the prompt, the gold NLL-oracle, the KL on completions, and RLOO/GRPO's groups."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import seqgan_env
from agents.base import collect_episodes
from agents.grpo import group_normalised_advantages, make_grpo
from agents.rloo import RlooAgent, RlooConfig, leave_one_out_advantages, make_rloo
from seqgan_env.divergence import kl_to_reference
from seqgan_env.metrics import nll_oracle_given_prompt
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset
from seqgan_env.prompts import complete
from seqgan_env.rewards.density_ratio import OptimalDiscriminator
from seqgan_env.rewards.registry import REWARD_KINDS
from tests.test_gym_conventions import compare_runs, model_arguments, play, random_actions

pytestmark = pytest.mark.usefixtures("one_thread")
K = 3


def prompted(num_envs: int | None = None, **kwargs):
    kwargs.setdefault("prompt_length", K)
    if num_envs is None:
        return gym.make("SeqGAN-Tiny-v0", **kwargs)
    return gym.make_vec("SeqGAN-Tiny-v0", num_envs=num_envs, **kwargs)


# -- the env -------------------------------------------------------------------------------
def test_same_seed_same_prompts_and_fresh_prompts_at_each_reset(tiny):
    env = prompted(reward="random")
    first = [env.reset(seed=11)[1]["prompt"]] + [env.reset()[1]["prompt"] for _ in range(5)]
    again = [env.reset(seed=11)[1]["prompt"]] + [env.reset()[1]["prompt"] for _ in range(5)]
    other = env.reset(seed=12)[1]["prompt"]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert all(p.shape == (K,) and ((0 <= p) & (p < tiny.vocab_size)).all() for p in first)
    assert len({tuple(p) for p in first}) >= 5  # fresh at every reset
    assert not all(np.array_equal(other, p) for p in first[:1])

    envs = prompted(8, reward="random")
    obs, info = envs.reset(seed=4)
    np.testing.assert_array_equal(envs.reset(seed=4)[0], obs)
    np.testing.assert_array_equal(info["prompt"], obs[:, :K])
    assert (info["prompt_length"] == K).all() and info["_prompt"].all()


def test_prompts_come_from_the_oracle(tiny_models, tiny):
    """The oracle's first K tokens: their frequencies follow the oracle's first-token distribution,
    far from the uniform draw of the bare MDP (which would put 1/64 on each token)."""
    oracle = tiny_models["oracle"]
    envs = prompted(400, reward="oracle", oracle=oracle)
    obs, _ = envs.reset(seed=0)
    logits, _ = oracle.start(1)
    expected = torch.softmax(logits[0], -1).numpy()
    seen = np.bincount(obs[:, 0], minlength=tiny.vocab_size) / 400
    assert np.abs(seen - expected).sum() < 0.35
    assert np.abs(np.full(tiny.vocab_size, 1 / 64) - expected).sum() > 0.6  # the check could fail


def test_rows_of_a_group_share_a_prompt_and_groups_differ():
    envs = prompted(64, reward="random", group_size=8)
    obs, _ = envs.reset(seed=1)
    for _ in range(2):  # at reset, and at every autoreset
        groups = obs[:, :K].reshape(8, 8, K)
        assert (groups == groups[:, :1]).all()
        assert len({tuple(g[0]) for g in groups}) >= 7  # distinct up to chance
        for _ in range(get_preset("tiny").seq_len - K):
            obs, _, terminated, _, info = envs.step(np.zeros(64, dtype=np.int64))
        assert terminated.all() and info["_prompt"].all()
    ungrouped = prompted(64, reward="random").reset(seed=1)[0][:, :K]
    assert len({tuple(p) for p in ungrouped}) > 8  # without groups each row draws its own


def test_the_agent_cannot_overwrite_the_prompt(tiny):
    env = prompted(reward="random")
    obs, info = env.reset(seed=3)
    prompt = info["prompt"].copy()
    np.testing.assert_array_equal(obs[:K], prompt)
    assert (obs[K:] == tiny.vocab_size).all() and info["prefix_length"] == K
    actions = list(range(10, 10 + tiny.seq_len - K))
    for t, action in enumerate(actions):
        obs, _, terminated, _, info = env.step(action)
        np.testing.assert_array_equal(obs[:K], prompt)
        assert obs[K + t] == action and info["prefix_length"] == K + t + 1
        assert terminated == (t == len(actions) - 1)  # seq_len - K steps
    np.testing.assert_array_equal(info["sequence"], np.concatenate([prompt, actions]))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_bad_prompt_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="prompt_length must be in"):
        prompted(prompt_length=8)
    with pytest.raises(ValueError, match="prompt_length must be in"):
        prompted(prompt_length=-1)
    with pytest.raises(ValueError, match="does not split into groups"):
        prompted(6, group_size=4)
    with pytest.raises(ValueError, match="pass prompt_length"):
        gym.make_vec("SeqGAN-Tiny-v0", num_envs=8, group_size=4)
    with pytest.raises(TypeError, match="make_vec"):
        prompted(group_size=4)


def checked(env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*is different from the unwrapped version")
        check_env(env)


@pytest.mark.parametrize("reward", ["monte_carlo", "oracle", "dense", "optimal"])
def test_check_env_passes_with_prompts(reward, tiny_models):
    checked(gym.make("SeqGAN-v0", preset="tiny", reward=reward, prompt_length=K,
                     **model_arguments(reward, tiny_models)))


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_one_prompted_row_reproduces_sync_vector_env_bit_for_bit(reward, tiny_models, tiny):
    """The vector checks of the suite, with prompts: the same seed draws the same prompts and the
    same reward draws in both, across autoresets."""
    kwargs = dict(preset="tiny", reward=reward, prompt_length=K, **model_arguments(reward, tiny_models))
    actions = random_actions(3 * (tiny.seq_len - K), 1, tiny.vocab_size, seed=2)
    ours = play(gym.make_vec("SeqGAN-v0", num_envs=1, **kwargs), actions, 5)
    theirs = play(SyncVectorEnv([lambda: gym.make("SeqGAN-v0", **kwargs)], autoreset_mode=AutoresetMode.SAME_STEP),
                  actions, 5)
    compare_runs(ours, theirs, "exact")


def test_many_prompted_rows_lay_out_infos_as_sync_vector_env(tiny):
    kwargs = dict(preset="tiny", reward="constant", prompt_length=K)
    actions = random_actions(2 * (tiny.seq_len - K) + 1, 4, tiny.vocab_size, seed=3)
    ours = play(gym.make_vec("SeqGAN-v0", num_envs=4, **kwargs), actions, 7)
    theirs = play(SyncVectorEnv([lambda: gym.make("SeqGAN-v0", **kwargs) for _ in range(4)],
                                autoreset_mode=AutoresetMode.SAME_STEP), actions, 7)
    for mine, expected in zip([ours[0][1]] + [s[4] for s in ours[1:]], [theirs[0][1]] + [s[4] for s in theirs[1:]]):
        assert sorted(mine) == sorted(expected)
        for key in expected:
            if isinstance(expected[key], np.ndarray) and expected[key].dtype != object:
                assert (mine[key].dtype, mine[key].shape) == (expected[key].dtype, expected[key].shape), key
                if key.startswith("_") or key in ("prefix_length", "prompt_length"):
                    np.testing.assert_array_equal(mine[key], expected[key])


def test_text_prompts_are_heads_of_held_out_lines(tmp_path):
    lines = [f"line {i} says {' '.join(['word'] * (i % 5))} the end" for i in range(60)] + ["a", "b c"]
    corpus = tmp_path / "lines.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    env = gym.make("SeqGAN-Text-v0", corpus=str(corpus), max_length=12, prompt_length=4)
    text = seqgan_env.factory.load_text_corpus(str(corpus), 12)
    heads = {tuple(row[:4]) for row in text.test.tolist()}
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        assert tuple(info["prompt"]) in heads and 1 not in info["prompt"]  # never the end token
        np.testing.assert_array_equal(obs[:4], info["prompt"])


# -- prompt_length=0 is today's env --------------------------------------------------------
# collect_episodes(4 rows, seed 3) by RLOO with a tiny generator (torch seed 1), the first two rows, as
# the env gave them before prompts existed (the code of commit 99cf71e, float32 D).
TODAY = {
    "monte_carlo": ([[31, 20, 29, 1, 44, 43, 27, 12], [48, 40, 40, 11, 50, 58, 35, 24]],
                    [[0.391974, 0.397322, 0.370808, 0.33995, 0.387306, 0.4314, 0.466324, 0.483451],
                     [0.335839, 0.365329, 0.362252, 0.329551, 0.353667, 0.363441, 0.365045, 0.409866]]),
    "oracle": ([[31, 20, 29, 1, 44, 43, 27, 12], [48, 40, 40, 11, 50, 58, 35, 24]],
               [[-6.585677, -3.443742, -5.30195, -3.194329, -4.384935, -2.655771, -4.411324, -8.008709],
                [-2.745106, -4.092689, -3.353284, -6.645509, -5.08586, -5.656485, -4.253267, -6.653441]]),
}


@pytest.mark.parametrize("reward", list(TODAY))
def test_prompt_length_zero_reproduces_todays_rollouts(reward, tiny_models, tiny):
    args = model_arguments(reward, tiny_models)
    batches = []
    for extra in ({}, {"prompt_length": 0}):
        envs = gym.make_vec("SeqGAN-v0", num_envs=4, preset="tiny", reward=reward, **args, **extra)
        torch.manual_seed(1)
        agent = RlooAgent(Generator.from_preset(tiny), RlooConfig(group_size=2), seed=0)
        batches.append(collect_episodes(envs, agent, seed=3))
    sequences, rewards = TODAY[reward]
    for batch in batches:
        assert batch.prompt_length == 0 and batch.mask.all()
        assert batch.sequences[:2].tolist() == sequences
        np.testing.assert_allclose(batch.rewards[:2], rewards, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(batches[0].rewards, batches[1].rewards)


# -- rewards given the prompt --------------------------------------------------------------
def test_monte_carlo_reward_completes_from_the_prompt_and_the_agents_tokens(tiny_models, tiny):
    """After each step the rollout policy's cached state is the one after the prompt and the
    agent's tokens: its logits equal the generator's teacher-forced ones at that position."""
    torch.manual_seed(0)
    generator = Generator(tiny.vocab_size, 16, 16, tiny.seq_len, init_std=1.0)  # its history matters
    envs = prompted(4, reward="monte_carlo", group_size=2, discriminator=tiny_models["discriminator"],
                    rollout_policy=generator)
    model = seqgan_env.reward_wrapper(envs).reward_model
    obs, _ = envs.reset(seed=0)
    for t in range(3):
        obs, rewards, *_ = envs.step(np.arange(4) + 7 * t)
        with torch.no_grad():
            expected = generator(torch.as_tensor(obs[:, : K + t + 2]).clamp(max=tiny.vocab_size - 1))[:, K + t + 1]
            agent_only = generator(torch.as_tensor(obs[:, K : K + t + 2]).clamp(max=tiny.vocab_size - 1))[:, t + 1]
        torch.testing.assert_close(model.prefixes.logits, expected, rtol=1e-4, atol=1e-4)
        assert (model.prefixes.logits - agent_only).abs().max() > 0.1  # without the prompt: far off
        assert ((rewards > 0) & (rewards < 1)).all()


def test_oracle_reward_is_the_log_likelihood_of_the_completion_given_the_prompt(tiny_models, tiny):
    oracle = tiny_models["oracle"]
    env = prompted(reward="oracle", oracle=oracle)
    obs, info = env.reset(seed=5)
    total = 0.0
    for action in range(20, 20 + tiny.seq_len - K):
        obs, reward, terminated, _, info = env.step(action)
        total += reward
    sequence = torch.as_tensor(info["sequence"]).unsqueeze(0)
    direct = sum(float(torch.log_softmax(oracle(sequence)[0, t], -1)[sequence[0, t]]) for t in range(K, tiny.seq_len))
    assert total == pytest.approx(direct, rel=1e-5)
    assert nll_oracle_given_prompt(oracle, sequence, K) == pytest.approx(-direct / (tiny.seq_len - K), rel=1e-5)


def direct_nll(oracle, sequences: torch.Tensor, k: int) -> float:
    """-log p_oracle per token of positions >= k, one token at a time through the step interface."""
    total, count = 0.0, 0
    for row in sequences:
        logits, state = oracle.start(1)
        for t, token in enumerate(row.tolist()):
            if t >= k:
                total -= float(torch.log_softmax(logits[0], -1)[token])
                count += 1
            logits, state = oracle.step(torch.tensor([token]), state)
    return total / count


def test_nll_oracle_given_the_prompt_matches_a_direct_computation(tiny_models, tiny):
    oracle, generator = tiny_models["oracle"], tiny_models["generator"]
    rng = torch.Generator().manual_seed(0)
    prompts = complete(oracle, torch.zeros((30, 0), dtype=torch.long), rng, length=K)
    sequences = complete(generator, prompts, rng)
    assert torch.equal(sequences[:, :K], prompts)
    got = nll_oracle_given_prompt(oracle, sequences, K)
    assert got == pytest.approx(direct_nll(oracle, sequences, K), rel=1e-5)
    assert abs(got - nll_oracle_given_prompt(oracle, sequences, 0)) > 0.05  # the prompt's tokens would count


def test_optimal_discriminator_scores_the_completion_given_the_prompt(tiny_models):
    oracle, generator = tiny_models["oracle"], tiny_models["generator"]
    tokens = oracle.sample(20, torch.Generator().manual_seed(1))
    whole = OptimalDiscriminator(oracle, generator).log_ratio(tokens)
    given = OptimalDiscriminator(oracle, generator, prompt_length=K).log_ratio(tokens)
    def conditional(model):
        with torch.no_grad():
            return model.log_probs(tokens)[:, K:].sum(1)
    torch.testing.assert_close(given, conditional(oracle) - conditional(generator), rtol=1e-4, atol=1e-4)
    assert (given - whole).abs().max() > 0.5
    env = prompted(reward="optimal", oracle=oracle, rollout_policy=generator)
    assert seqgan_env.reward_wrapper(env).reward_model.discriminator.prompt_length == K


def test_kl_to_reference_on_completions_of_the_same_prompts(tiny_models, tiny):
    oracle, reference = tiny_models["oracle"], tiny_models["generator"]
    torch.manual_seed(3)
    policy = Generator.from_preset(tiny)
    prompts = complete(oracle, torch.zeros((400, 0), dtype=torch.long), torch.Generator().manual_seed(0), length=K)
    estimate = kl_to_reference(policy, reference, rng=torch.Generator().manual_seed(1), prompt_length=K,
                               prompts=prompts)
    samples = complete(policy, prompts, torch.Generator().manual_seed(1))
    def given(model):
        with torch.no_grad():
            return model.log_probs(samples)[:, K:].sum(1).double()
    assert estimate.samples == 400
    assert estimate.kl == pytest.approx(float((given(policy) - given(reference)).mean()), rel=1e-4)
    assert kl_to_reference(policy, policy, prompt_length=K, prompts=prompts).kl == pytest.approx(0.0, abs=1e-9)
    whole = kl_to_reference(policy, reference, samples=samples)
    assert abs(whole.kl - estimate.kl) > 0.1  # the prompts' tokens would count (5 standard errors)
    with pytest.raises(ValueError, match="needs prompts"):
        kl_to_reference(policy, reference, prompt_length=K)


# -- RLOO and GRPO use the groups ------------------------------------------------------------
def test_rloo_group_advantages_differ_from_the_batch_ones_and_equal_them_for_one_group():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 11.0, 12.0, 13.0, 14.0])  # a hard prompt, then an easy one
    batch = rewards - (rewards.sum() - rewards) / (len(rewards) - 1)  # leave-one-out over the whole batch
    grouped = leave_one_out_advantages(rewards, 4)
    by_hand = torch.cat([g - (g.sum() - g) / 3 for g in rewards.view(2, 4)])
    torch.testing.assert_close(grouped, by_hand)
    assert (grouped - batch).abs().max() > 3.0  # groups of different prompts: far from the batch's
    torch.testing.assert_close(leave_one_out_advantages(rewards, 8), batch)
    torch.testing.assert_close(leave_one_out_advantages(rewards), batch)  # default: the whole batch
    normalised = group_normalised_advantages(rewards, 4, 0.0)
    assert (normalised - group_normalised_advantages(rewards, None, 0.0)).abs().max() > 0.5
    torch.testing.assert_close(group_normalised_advantages(rewards, None, 0.0),
                               (rewards - rewards.mean()) / rewards.std())


def test_rloo_learns_from_prompted_groups_and_refuses_groups_across_prompts(tiny, tiny_models):
    envs = prompted(8, reward="oracle", oracle=tiny_models["oracle"], group_size=4)
    torch.manual_seed(0)
    agent = make_rloo(Generator.from_preset(tiny), envs, seed=0, group_size=4)
    batch = collect_episodes(envs, agent, seed=2)
    assert batch.prompt_length == K and (batch.lengths == tiny.seq_len).all()
    groups = batch.sequences[:, :K].reshape(2, 4, K)
    assert (groups == groups[:, :1]).all()
    assert not batch.mask[:, :K].any() and batch.mask[:, K:].all() and (batch.rewards[:, :K] == 0).all()
    stats = agent.learn(batch)
    assert stats["env_steps"] == 8 * (tiny.seq_len - K)
    make_rloo(Generator.from_preset(tiny), envs, seed=0, group_size=2)  # groups of 2 within groups of 4
    with pytest.raises(ValueError, match="share prompts in groups of 4"):
        make_rloo(Generator.from_preset(tiny), envs, seed=0, group_size=8)
    with pytest.raises(ValueError, match="group_size=4"):
        make_grpo(Generator.from_preset(tiny), prompted(8, reward="random"), seed=0, group_size=4)


# -- the comparison's prompt axis -------------------------------------------------------------
def test_the_comparison_passes_prompts_to_each_run(tiny_models):
    from train.cli import build_parser
    from train.experiments.config import CompareConfig, check_config
    from train.experiments.prompted import prompt_env_kwargs, prompted_metrics

    assert build_parser().parse_args(["compare", "--prompt-length", "4"]).prompt_length == 4
    assert CompareConfig.from_dict(CompareConfig(prompt_length=4).to_dict()).prompt_length == 4
    with pytest.raises(ValueError, match="prompt_length"):
        check_config(CompareConfig(prompt_length=-1))
    assert prompt_env_kwargs(0, "rloo", {}) == {}
    assert prompt_env_kwargs(4, "rloo", {}) == {"prompt_length": 4, "group_size": RlooConfig().group_size}
    assert prompt_env_kwargs(4, "grpo", {"group_size": 8}) == {"prompt_length": 4, "group_size": 8}
    assert prompt_env_kwargs(4, "reinforce-mean", {}) == {"prompt_length": 4}

    oracle, generator = tiny_models["oracle"], tiny_models["generator"]
    metrics = prompted_metrics(generator, generator, oracle, K, 200, seed=0)
    assert metrics["kl_prompted"] == pytest.approx(0.0, abs=1e-9)
    prompts = complete(oracle, torch.zeros((200, 0), dtype=torch.long), torch.Generator().manual_seed(2027), length=K)
    completions = complete(generator, prompts, torch.Generator().manual_seed(0))
    assert metrics["nll_oracle_prompted"] == pytest.approx(nll_oracle_given_prompt(oracle, completions, K))
    assert prompted_metrics(generator, generator, oracle, 0, 50, seed=0) == {}


def test_sb3_rollouts_hold_one_prompted_episode_per_env(tiny):
    pytest.importorskip("stable_baselines3")
    from agents.sb3 import make_ppo

    model = make_ppo(prompted(4, reward="random"), Generator.from_preset(tiny))
    assert model.n_steps == tiny.seq_len - K  # the agent's steps, not the prompt's tokens


def test_the_reference_penalty_is_paid_on_the_completion_given_the_prompt(tiny_models, tiny):
    from seqgan_env.rewards.reference_penalty import with_reference_penalty

    reference = tiny_models["generator"]
    envs = with_reference_penalty(prompted(2, reward="constant"), reference, beta=0.5)
    obs, _ = envs.reset(seed=0)
    paid = np.zeros(2)
    for t in range(2 * (tiny.seq_len - K)):  # two episodes: the autoreset's prompts too
        if t == tiny.seq_len - K:
            prompt, paid = obs[:, :K].copy(), np.zeros(2)
        obs, rewards, terminated, _, info = envs.step(np.array([t % 64, (5 * t) % 64]))
        paid += rewards - 1.0  # the constant reward pays 1
    sequences = torch.as_tensor(np.stack(info["final_obs"]))
    assert (sequences[:, :K].numpy() == prompt).all()
    with torch.no_grad():
        expected = 0.5 * reference.log_probs(sequences)[:, K:].sum(1).double().numpy()
    np.testing.assert_allclose(paid, expected, rtol=1e-4)


def test_the_bare_mdp_draws_uniform_prompts_without_the_end_token():
    env = seqgan_env.SeqGANEnv(vocab_size=4, seq_len=5, eos_token=1, prompt_length=3)
    prompts = np.stack([env.reset(seed=seed)[1]["prompt"] for seed in range(200)])
    assert set(prompts.ravel().tolist()) == {0, 2, 3}  # every token but the end token
    assert abs((prompts == 0).mean() - 1 / 3) < 0.05


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("reward", ["monte_carlo", "oracle", "dense"])
def test_prompted_rewards_on_cuda_agree_with_cpu(reward, tiny_models, tiny):
    """The same seed gives the same prompts on either device (drawn on the oracle's CPU copy from
    the env's generator); the rewards given them agree in the mean over 256 rows."""
    args = model_arguments(reward, tiny_models)
    if reward == "monte_carlo":
        args["compute_dtype"] = "float32"
    obs, means = {}, {}
    for device in ("cpu", "cuda"):
        envs = prompted(256, reward=reward, device=device, group_size=16, **args)
        obs[device] = envs.reset(seed=0)[0]
        means[device] = np.array([envs.step(np.full(256, a))[1].mean() for a in range(tiny.seq_len - K)])
    np.testing.assert_array_equal(obs["cuda"], obs["cpu"])
    np.testing.assert_allclose(means["cuda"], means["cpu"], atol=0.02, rtol=1e-3)


def test_groups_share_their_prompt_in_a_batch_of_episodes_of_different_lengths():
    """With an end token the rows of a group finish at different steps; the batch's episodes (each
    row's first after reset) still share their group's prompt."""
    from agents.reinforce import ReinforceAgent, ReinforceConfig
    from seqgan_env.presets import Preset

    preset = Preset(name="eos", vocab_size=6, seq_len=8, eos_token=2, gen_embedding_dim=8, gen_hidden_dim=8,
                    oracle_embedding_dim=8, oracle_hidden_dim=8)
    envs = gym.make_vec("SeqGAN-v0", num_envs=12, preset=preset, reward="random", prompt_length=2, group_size=4)
    torch.manual_seed(0)
    batch = collect_episodes(envs, ReinforceAgent(Generator.from_preset(preset), ReinforceConfig()), seed=0)
    groups = batch.sequences[:, :2].reshape(3, 4, 2)
    assert (groups == groups[:, :1]).all() and not (batch.sequences[:, :2] == 2).any()
    assert len(set(batch.lengths.tolist())) > 1  # rows did finish at different steps
    assert (batch.mask.sum(1) == batch.lengths - 2).all()
