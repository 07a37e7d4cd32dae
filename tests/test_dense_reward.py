"""The dense reward: a PrefixDiscriminator's P(real | y_<=t) after every step, computed incrementally."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import seqgan_env
from seqgan_env.checkpoint import CheckpointError, load_model, save_model
from seqgan_env.models import Discriminator, Generator, PrefixDiscriminator
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.precision import training_autocast
from seqgan_env.presets import get_preset
from seqgan_env.rewards import DensePrefixReward
from tests.test_gym_conventions import compare_runs, play, random_actions, sync_over_single

# Text-like episodes: token 1 ends a sequence, so rows finish (and are reset) at different steps.
EOS_PRESET = get_preset("tiny").replace(eos_token=1)


def prefix_discriminator(seed: int = 0) -> PrefixDiscriminator:
    torch.manual_seed(seed)
    return PrefixDiscriminator.from_preset(get_preset("tiny")).eval()


def reference_reward(disc: PrefixDiscriminator, prefix: list[int]) -> float:
    """P(real) of one prefix, by the full forward pass over that prefix alone."""
    with torch.no_grad():
        return float(torch.sigmoid(disc(torch.tensor([prefix]))[0, -1]))


def play_against_reference(envs, disc: PrefixDiscriminator, steps: int, seed: int,
                           swap_at: int | None = None, other: PrefixDiscriminator | None = None) -> int:
    """Step ``envs`` with random actions; every reward must equal the per-prefix reference of the
    D in use. Returns how many episodes finished."""
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    prefixes: list[list[int]] = [[] for _ in range(envs.num_envs)]
    finished = 0
    for t in range(steps):
        if swap_at is not None and t == swap_at:
            seqgan_env.set_discriminator(envs, other)
            disc = other
        actions = rng.integers(0, EOS_PRESET.vocab_size, envs.num_envs)
        actions[rng.random(envs.num_envs) < 0.15] = EOS_PRESET.eos_token
        _, rewards, terminated, _, _ = envs.step(actions)
        for row, action in enumerate(actions):
            prefixes[row].append(int(action))
            assert rewards[row] == pytest.approx(reference_reward(disc, prefixes[row]), abs=1e-6), \
                f"step {t}, row {row}, prefix {prefixes[row]}"
            if terminated[row]:
                prefixes[row] = []
                finished += 1
    return finished


def test_dense_reward_equals_the_per_prefix_reference_across_resets():
    disc = prefix_discriminator()
    envs = gym.make_vec("SeqGAN-v0", num_envs=4, preset=EOS_PRESET, reward="dense", discriminator=disc)
    finished = play_against_reference(envs, disc, steps=30, seed=3)
    assert finished >= 8  # rows finished and restarted at different steps (early end tokens, full length)


def test_dense_reward_after_a_mid_episode_swap_scores_the_whole_prefix_with_the_new_d():
    disc, other = prefix_discriminator(0), prefix_discriminator(1)
    envs = gym.make_vec("SeqGAN-v0", num_envs=3, preset=EOS_PRESET, reward="dense", discriminator=disc)
    play_against_reference(envs, disc, steps=20, seed=4, swap_at=5, other=other)


def test_dense_reward_follows_a_discriminator_retrained_in_place():
    disc = prefix_discriminator()
    envs = gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", reward="dense", discriminator=disc)
    envs.reset(seed=0)
    tokens = [[5, 9], [7, 3]]
    envs.step(np.array([5, 7]))
    with torch.no_grad():
        disc.head.bias.add_(2.0)  # an optimiser step would change the weights in place like this
    _, rewards, _, _, _ = envs.step(np.array([9, 3]))
    for row in range(2):
        assert rewards[row] == pytest.approx(reference_reward(disc, tokens[row]), abs=1e-6)


def test_single_env_dense_reward_and_sync_vector_env_agree():
    disc = prefix_discriminator()
    kwargs = dict(preset="tiny", reward="dense", discriminator=disc)
    actions = random_actions(2 * 8 + 3, 3, 64, seed=5)
    ours = play(gym.make_vec("SeqGAN-v0", num_envs=3, **kwargs), actions, 7)
    theirs = play(sync_over_single(3, **kwargs), actions, 7)
    compare_runs(ours, theirs, "close")


def test_check_env_passes_on_the_dense_reward():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r".*is different from the unwrapped version")
        check_env(gym.make("SeqGAN-v0", preset="tiny", reward="dense", discriminator=prefix_discriminator()))
        check_env(gym.make("SeqGAN-v0", preset=EOS_PRESET, reward="dense", discriminator=prefix_discriminator(),
                           render_mode="ansi"))


# -- wrong discriminator kinds and unknown options ---------------------------------------------


def test_each_reward_refuses_the_other_discriminator_kind_naming_both(tmp_path):
    tiny = get_preset("tiny")
    cnn, prefix = Discriminator.from_preset(tiny), prefix_discriminator()
    with pytest.raises(ValueError, match=r"reward='dense' needs a PrefixDiscriminator.*got a Discriminator"):
        gym.make("SeqGAN-v0", preset="tiny", reward="dense", discriminator=cnn)
    with pytest.raises(ValueError, match=r"reward='monte_carlo' needs a Discriminator.*got a PrefixDiscriminator"):
        gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", discriminator=prefix)
    with pytest.raises(ValueError, match=r"reward='terminal' needs a Discriminator.*reward='dense'"):
        gym.make("SeqGAN-v0", preset="tiny", reward="terminal", discriminator=prefix)
    save_model(cnn, tmp_path / "cnn.pt")  # a file of the wrong kind, too
    with pytest.raises(ValueError, match=r"reward='dense' needs a PrefixDiscriminator"):
        gym.make("SeqGAN-v0", preset="tiny", reward="dense", discriminator=tmp_path / "cnn.pt")
    save_model(Generator.from_preset(tiny), tmp_path / "g.pt")  # not a discriminator at all
    with pytest.raises(CheckpointError, match=r"g\.pt' holds a 'generator', expected a 'prefix-discriminator'"):
        gym.make("SeqGAN-v0", preset="tiny", reward="dense", discriminator=tmp_path / "g.pt")
    dense = gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", reward="dense", discriminator=prefix)
    with pytest.raises(ValueError, match=r"needs a PrefixDiscriminator, got a Discriminator"):
        seqgan_env.set_discriminator(dense, cnn)
    monte_carlo = gym.make("SeqGAN-v0", preset="tiny", discriminator=cnn)
    with pytest.raises(ValueError, match=r"needs a Discriminator, got a PrefixDiscriminator"):
        seqgan_env.set_discriminator(monte_carlo, prefix)


def test_options_the_dense_reward_does_not_read_are_named():
    for name, value in (("rollout_policy", object()), ("num_rollouts", 4), ("compute_dtype", "bfloat16"),
                        ("oracle", "builtin")):
        with pytest.raises(ValueError, match=rf"reward='dense' does not use {name}="):
            gym.make("SeqGAN-v0", preset="tiny", reward="dense", discriminator=prefix_discriminator(),
                     **{name: value})
    with pytest.raises(ValueError, match=r"unknown reward kind 'densse'.*'dense'"):
        gym.make("SeqGAN-v0", preset="tiny", reward="densse")
    with pytest.raises(ValueError, match="discriminator reads a vocabulary of 32 tokens, the env has 64"):
        DensePrefixReward(prefix_discriminator()).set_discriminator(PrefixDiscriminator(32, 8))


def test_prefix_discriminator_save_load_round_trip(tmp_path):
    disc = PrefixDiscriminator(64, 8, embedding_dim=12, hidden_dim=10)
    save_model(disc, tmp_path / "prefix.pt")
    loaded = load_model(tmp_path / "prefix.pt", "prefix-discriminator")
    assert isinstance(loaded, PrefixDiscriminator) and loaded.config_dict() == disc.config_dict()
    tokens = torch.randint(0, 64, (5, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(tokens), disc(tokens))
    with pytest.raises(CheckpointError, match="holds a 'prefix-discriminator', expected a 'discriminator'"):
        load_model(tmp_path / "prefix.pt", "discriminator")
    env = gym.make("SeqGAN-v0", preset="tiny", reward="dense", discriminator=str(tmp_path / "prefix.pt"))
    env.reset(seed=0)
    assert 0.0 < env.step(3)[1] < 1.0


# -- training ---------------------------------------------------------------------------------


def test_prefix_loss_is_bce_over_every_non_pad_position():
    """One epoch at learning rate 0 reports the loss at the initial weights: binary cross-entropy
    averaged over the prefix positions, PAD positions (after an end token) left out."""
    disc = PrefixDiscriminator(16, 6, embedding_dim=8, hidden_dim=8)
    pad = disc.pad_token
    real = torch.tensor([[3, 4, 1, pad, pad, pad], [5, 6, 7, 8, 9, 2]])
    fake = torch.tensor([[2, 1, pad, pad, pad, pad], [9, 9, 9, 9, 9, 9]])
    stats = fit_discriminator(disc, real, fake, 1, torch.optim.SGD(disc.parameters(), lr=0.0), batch_size=4,
                              label_smoothing=0.1)
    with torch.no_grad(), training_autocast(disc.device):  # as fit_discriminator computes its forward pass
        tokens = torch.cat([real, fake])
        logits = disc(tokens).float()
        targets = torch.tensor([0.9, 0.9, 0.0, 0.0]).unsqueeze(1).expand_as(logits)
        losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        valid = tokens != pad
        expected = float(losses[valid].mean())
    assert stats["d_loss"] == pytest.approx(expected, rel=1e-5)
    assert abs(float(losses.mean()) - expected) > 1e-3  # counting the PAD positions would change it


def test_prefix_discriminator_learns_to_tell_real_from_generated(trained_tiny):
    from train.pretrain import DiscriminatorSchedule, train_discriminator

    torch.manual_seed(0)
    disc = PrefixDiscriminator.from_preset(get_preset("tiny"))
    real, generator, rng = trained_tiny["real"], trained_tiny["generator"], torch.Generator().manual_seed(0)
    fresh_real, fresh_fake = real[:500], generator.sample(500, torch.Generator().manual_seed(1))
    before = float(disc.score(fresh_real).mean() - disc.score(fresh_fake).mean())
    train_discriminator(disc, generator, real, DiscriminatorSchedule(rounds=3, epochs=2, num_negatives=1000, lr=1e-2),
                        rng)
    after = float(disc.score(fresh_real).mean() - disc.score(fresh_fake).mean())
    assert after > before + 0.1, (before, after)  # real sequences now score clearly higher than samples
