"""The comparison's shared base: the MLE generator and the pretrained discriminators every run starts from."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from seqgan_env.checkpoint import load_checkpoint, load_model
from seqgan_env.models import Generator, Oracle, TokenLSTM
from seqgan_env.presets import Preset, get_preset
from seqgan_env.rewards.density_ratio import (
    DENSITY_RATIO_KIND,
    DensityRatioDiscriminator,
    load_density_ratio,
    save_density_ratio,
)
from train.config import get_train_config
from train.experiments.config import CompareConfig
from train.experiments.rewards import ComparisonReward, get_comparison_reward
from train.pretrain import DiscriminatorSchedule, build_discriminator, train_discriminator

PIPELINE_D_FILE = "discriminator.pt"
"""The D the training pipeline itself pretrains (the paper's)."""


def prepare_base(folder: Path, config: CompareConfig, oracle: Oracle, progress: bool = True,
                 device: str = "cpu") -> Path:
    """MLE generator and the pretrained Ds of ``config.rewards``, shared by every run (``folder/base``),
    trained once, resumable.

    The pipeline (:class:`train.pipeline.Run`) trains the MLE generator and the paper's D
    (``discriminator.pt``; only when a reward reads it, else it takes no rounds). The other
    learned Ds (each reward's ``discriminator_file``) are pretrained after it against the same
    MLE generator, on the same real data with the same schedule and the reward's ``schedule``
    fields: ``discriminator-reg.pt`` with :data:`train.pretrain.REGULARISED_D`,
    ``prefix-discriminator.pt`` for ``dense``, ``discriminator-density-ratio.pt`` (the language
    model of a density ratio, fitted to fresh oracle sequences) for ``density-ratio``. A reward without a learned D needs nothing here.
    With ``config.fixed_data`` every D is fitted to the base's real sequences alone (the oracle is not
    handed to its training: :func:`with_reward_schedule`).
    """
    from train.pipeline import Run

    base = folder / "base"
    train_config = get_train_config(config.base_preset)
    if config.base_mle_epochs is not None:
        train_config.mle.epochs = config.base_mle_epochs
    if config.base_d_rounds is not None:
        train_config.d_pretrain.rounds = config.base_d_rounds
    if config.base_real_samples is not None:
        train_config.real_samples = config.base_real_samples
    if config.fixed_data:  # the pipeline's D too: positives from its real data only
        train_config.d_pretrain.fresh_real = False
    schedule = dataclasses.replace(train_config.d_pretrain)
    needed = needed_rewards(config)
    if not any(_is_pipeline_d(reward) for reward in needed):
        train_config.d_pretrain.rounds = 0  # the paper's D serves no run
    if not (base / "summary.json").exists():
        train_config.adversarial.steps = 0
        train_config.adversarial.eval_samples = config.eval_samples
        train_config.seed = config.seed
        train_config.device = device
        resume = (base / "checkpoint.pt").exists()
        Run(base, train_config, oracle, resume=resume, progress=progress).run()
    for index, reward in enumerate(needed):
        if reward.discriminator_file is None or _is_pipeline_d(reward) or (base / reward.discriminator_file).exists():
            continue
        pretrain_extra_d(base, reward, schedule, torch.Generator().manual_seed(config.seed * 1000 + 17 * index + 1),
                         progress, device, None if config.fixed_data else oracle, config.fixed_data)
    return base


def _is_pipeline_d(reward: ComparisonReward) -> bool:
    return reward.discriminator_file == PIPELINE_D_FILE and not reward.schedule


def needed_rewards(config: CompareConfig) -> list[ComparisonReward]:
    """The rewards some run of ``config`` trains on (in ``config.rewards``' order: it seeds their Ds)."""
    return [get_comparison_reward(r) for r in config.rewards] if config.settings and config.algos else []


def with_reward_schedule(schedule: DiscriminatorSchedule, reward: ComparisonReward,
                         fixed_data: bool = False) -> DiscriminatorSchedule:
    """``schedule`` with the fields ``reward``'s D is trained with (``monte_carlo-reg``: :data:`REGULARISED_D`);
    ``fixed_data`` (:attr:`CompareConfig.fixed_data`): its positives from the real data, never fresh ones."""
    schedule = dataclasses.replace(schedule, **reward.schedule)
    return dataclasses.replace(schedule, fresh_real=False) if fixed_data else schedule


def pretrain_extra_d(base: Path, reward: ComparisonReward, schedule: DiscriminatorSchedule, rng: torch.Generator,
                     progress: bool, device: str, oracle: Oracle | None = None, fixed_data: bool = False) -> None:
    """Pretrain the D of ``reward`` (other than the pipeline's) and save it in ``base``, atomically
    (a density ratio: its language model, which starts as the MLE generator's copy); ``fixed_data``:
    on the base's real sequences only."""
    from seqgan_env.checkpoint import save_model

    generator, real, _, preset = base_models(base, device)
    schedule = with_reward_schedule(schedule, reward, fixed_data)
    if schedule.model == "cnn":
        discriminator = reward.discriminator_class.from_preset(preset).to(device)
    else:
        discriminator = build_discriminator(schedule, preset, generator)
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=rng)))  # D's initial weights
    train_discriminator(discriminator, generator, real, schedule, rng, progress=progress,
                        desc=f"D pretraining ({reward.name})", oracle=oracle)
    if isinstance(discriminator, DensityRatioDiscriminator):
        save_density_ratio(discriminator, base / reward.discriminator_file)
    else:
        save_model(discriminator.eval(), base / reward.discriminator_file)


def load_reward_discriminator(base: Path, reward: ComparisonReward, reference: TokenLSTM,
                              device: str) -> torch.nn.Module:
    """The base's D of ``reward``, dropout off; a density ratio's reference is ``reference`` (the
    base MLE generator in the fixed setting, the policy itself in the adversarial one)."""
    path = base / reward.discriminator_file
    if load_checkpoint(path).get("kind") == DENSITY_RATIO_KIND:
        return load_density_ratio(path, reference)
    return load_model(path, reward.checkpoint_kind, device=device).eval()


def base_models(base: Path, device: str) -> tuple[Generator, torch.Tensor, torch.Tensor, Preset]:
    """The base's MLE generator, real and test sequences, and the model preset with the base's sizes."""
    generator = load_model(base / "generator.pt", "generator", device=device)
    payload = load_checkpoint(base / "checkpoint.pt", "training-run")
    preset = get_preset(payload["config"]["model_preset"]).replace(
        vocab_size=generator.vocab_size, seq_len=generator.seq_len, start_token=generator.start_token)
    return generator, payload["real"], payload["test"], preset
