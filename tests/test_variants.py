"""Registered variants: ids, their spec, their spaces, the text variant's corpus, type annotations."""

from __future__ import annotations

import typing

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import seqgan_env
from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.rewards.wrappers import SeqGANRewardWrapper


@pytest.mark.parametrize(("env_id", "vocab", "length"), [
    ("SeqGAN-v0", 5000, 20), ("SeqGAN-Tiny-v0", 64, 8), ("SeqGAN-Paper-v0", 5000, 20),
])
def test_variant_spec_says_what_it_is(env_id, vocab, length):
    spec = gym.spec(env_id)
    assert spec.kwargs == seqgan_env.VARIANTS[env_id] and spec.kwargs["preset"]
    assert spec.max_episode_steps is None and spec.reward_threshold is None
    if env_id == "SeqGAN-v0":
        return  # building the default loads its shipped models; covered by test_env
    env = gym.make(env_id)
    assert env.spec.kwargs["preset"] == spec.kwargs["preset"]
    assert env.action_space == gym.spaces.Discrete(vocab)
    assert env.observation_space.shape == (length,)


def test_tiny_variant_passes_the_checker_and_runs_vectorised():
    check_env(gym.make("SeqGAN-Tiny-v0").unwrapped)
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=3)
    obs, _ = envs.reset(seed=0)
    for _ in range(8):
        obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert ((0 <= rewards) & (rewards <= 1)).all() and not truncated.any()
    assert terminated.all()


def test_text_variant_reads_the_corpus(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(["the cat sat on the mat .", "a dog ran home .", "the dog sat ."] * 20) + "\n")
    env = gym.make("SeqGAN-Text-v0", corpus=str(path), max_length=10, render_mode="ansi")
    assert env.spec.kwargs["corpus"] == str(path) and env.observation_space.shape == (10,)
    env.reset(seed=0)
    vocab = seqgan_env.factory.load_text_corpus(str(path), 10).vocab
    env.step(vocab.encode("cat")[0])
    assert env.render() == "[1/10] cat"
    envs = gym.make_vec("SeqGAN-Text-v0", num_envs=2, corpus=str(path), max_length=10)
    assert envs.reset(seed=0)[0].shape == (2, 10)


def test_text_variant_without_corpus_says_what_is_missing(tmp_path):
    with pytest.raises(TypeError, match="corpus="):
        gym.make("SeqGAN-Text-v0")
    with pytest.raises(FileNotFoundError, match="corpus="):
        gym.make("SeqGAN-Text-v0", corpus=str(tmp_path / "missing.txt"))


def test_envs_are_typed():
    assert SeqGANEnv.__orig_bases__[0] == gym.Env[np.ndarray, np.int64]
    assert SeqGANVectorEnv.__orig_bases__[0] == gym.vector.VectorEnv[np.ndarray, np.ndarray, np.ndarray]
    for cls in (SeqGANEnv, SeqGANVectorEnv, SeqGANRewardWrapper):
        for method in ("reset", "step"):
            assert typing.get_type_hints(getattr(cls, method))["return"].__origin__ is tuple, (cls, method)
    assert (seqgan_env.factory.asset_path("..") / "py.typed").is_file()


# The synthetic experiment of Yu et al. (2017), "SeqGAN: Sequence Generative Adversarial Nets with
# Policy Gradient" (AAAI), written out here from the paper and its code (github.com/LantaoYu/SeqGAN,
# commit 5f2c0a5), not from our presets, so that a preset that drifts from them fails.
PAPER_MODELS = {  # sequence_gan.py, "Generator Hyper-parameters" and main()
    "vocab_size": 5000, "seq_len": 20, "start_token": 0,
    "gen_embedding_dim": 32, "gen_hidden_dim": 32,  # EMB_DIM, HIDDEN_DIM
    "oracle_embedding_dim": 32, "oracle_hidden_dim": 32,  # TARGET_LSTM(vocab_size, BATCH_SIZE, EMB_DIM, HIDDEN_DIM, ...)
    "num_rollouts": 16,  # rollout.get_reward(sess, samples, 16, discriminator)
}
PAPER_DISCRIMINATOR = {  # sequence_gan.py, "Discriminator Hyper-parameters"
    "embedding_dim": 64,  # dis_embedding_dim
    "filter_sizes": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),  # dis_filter_sizes
    "num_filters": (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160),  # dis_num_filters
    "dropout_keep": 0.75,  # dis_dropout_keep_prob
    "l2_reg": 0.2,  # dis_l2_reg_lambda
}
PAPER_SCHEDULE = {
    # MLE: PRE_EPOCH_NUM = 120, BATCH_SIZE = 64; generator.py: Adam(learning_rate=0.01), grad_clip = 5.0.
    "mle": {"epochs": 120, "batch_size": 64, "lr": 0.01, "grad_clip": 5.0},
    # D pretraining: "for _ in range(50)" x (generated_num = 10000 negatives, "for _ in range(3)" epochs),
    # dis_batch_size = 64; discriminator.py: tf.train.AdamOptimizer(1e-4).
    "d_pretrain": {"rounds": 50, "epochs": 3, "num_negatives": 10_000, "batch_size": 64, "lr": 1e-4},
    # Adversarial: one generator update of BATCH_SIZE = 64 sequences, rewards from 16 rollouts, then
    # D "for _ in range(5)" x (10000 negatives, 3 epochs); NLL-oracle on generated_num = 10000 samples.
    "adversarial": {"batch_size": 64, "num_rollouts": 16, "d_rounds": 5, "d_epochs": 3, "d_negatives": 10_000,
                    "eval_samples": 10_000},
}
PAPER_UPDATE = {"lr": 0.01, "grad_clip": 5.0,  # generator.py: the same Adam and clipping for g_updates
                "rollout_beta": 0.8}  # sequence_gan.py: ROLLOUT(generator, 0.8)


def test_the_paper_preset_has_the_papers_numbers():
    import dataclasses

    from agents.reinforce import ReinforceConfig
    from seqgan_env.models import Discriminator
    from seqgan_env.presets import get_preset
    from train.config import get_train_config

    preset = get_preset("paper")
    assert {key: getattr(preset, key) for key in PAPER_MODELS} == PAPER_MODELS
    assert {key: getattr(preset.discriminator, key) for key in PAPER_DISCRIMINATOR} == PAPER_DISCRIMINATOR
    assert sum(PAPER_DISCRIMINATOR["num_filters"]) == 1720  # the paper's feature width
    disc = Discriminator.from_preset(preset)
    assert [(conv.kernel_size[0], conv.out_channels) for conv in disc.convs] == list(
        zip(PAPER_DISCRIMINATOR["filter_sizes"], PAPER_DISCRIMINATOR["num_filters"]))
    assert disc.output.in_features == 1720 and disc.dropout.p == pytest.approx(0.25)
    assert gym.spec("SeqGAN-Paper-v0").kwargs["preset"] == "paper"

    schedule = get_train_config("paper")
    assert schedule.model_preset == "paper" and not schedule.start_from_shipped
    for part, expected in PAPER_SCHEDULE.items():
        values = dataclasses.asdict(getattr(schedule, part))
        assert {key: values[key] for key in expected} == expected, part
    assert schedule.adversarial.d_target_accuracy is None  # D is always retrained, as in the paper
    update = dataclasses.asdict(ReinforceConfig())
    assert {key: update[key] for key in PAPER_UPDATE} == PAPER_UPDATE
