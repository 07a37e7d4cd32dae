"""Scoring any agent on one protocol: ``seqgan evaluate --agent module:function``.

The protocol is the same for every agent, so that scores can be graded against the
reference table (``docs/reference_scores.md``):

1. **The base.** The variant's training preset pretrains a generator G by MLE on oracle data
   and a discriminator D against it (once, into ``OUT/base``, by the ordinary pipeline; later
   calls reuse it). Every agent starts from the same G and D.
2. **Training, per seed.** ``function(generator, envs, seed)`` builds the agent from a fresh
   copy of G; ``envs`` is the variant's vector env paying the Monte Carlo reward of the base
   D, held fixed (a stationary reward), or a control reward (``--reward constant`` or
   ``random``). Each of ``updates`` updates is ``agent.update(seed)`` for agents that collect
   their own rollouts (SB3's), else ``agent.learn(collect_episodes(envs, agent, seed))``.
3. **Evaluation, per seed.** The agent writes ``eval_samples`` sequences in the variant's env
   with the base D's Monte Carlo reward and the base G as the rollout policy (the same
   yardstick for every agent): **mean reward** per step, and **NLL-oracle** of those
   sequences. **NLL-test** is its ``generator``'s per-token NLL of held-out oracle data, and
   the divergences of that generator to the oracle per token, **reverse KL** (on
   ``min(eval_samples, 2000)`` fresh samples of the generator) and **forward KL** (on the
   held-out data); agents without a ``generator`` attribute have none of these three.
4. **Summary.** Mean and 95% confidence interval (Student's t) over the seeds.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import seqgan_env
from agents.base import Agent, collect_episodes
from seqgan_env.checkpoint import load_checkpoint, load_model
from seqgan_env.divergence import per_token_divergence, reverse_kl, score_sequences
from seqgan_env.factory import resolve_oracle
from seqgan_env.models import TokenLSTM
from seqgan_env.presets import get_preset
from seqgan_env.rewards.registry import get_reward_kind
from train.algorithms import load_object
from train.config import get_train_config
from train.experiments.statistics import mean_ci
from train.pretrain import DiscriminatorSchedule

VARIANT_TRAIN_PRESETS = {"SeqGAN-Tiny-v0": "tiny", "SeqGAN-v0": "default", "SeqGAN-Paper-v0": "cpu"}
"""The training preset that makes each synthetic variant's base."""
BASE_D_SCHEDULES = {
    # The tiny training preset's D (2 short rounds, made for fast tests) stays near chance;
    # a graded score needs a D with an opinion: 6 rounds, a quarter of the negatives random.
    "SeqGAN-Tiny-v0": DiscriminatorSchedule(rounds=6, epochs=3, num_negatives=2000, lr=1e-3, random_negatives=0.25),
}
"""D pretraining of the base where it differs from the training preset's."""
TRAIN_REWARDS = ("monte_carlo", "constant", "random")
"""Training rewards of the protocol: the base D's (fixed), or a control (which reads no model)."""
METRICS = ("reverse_kl", "forward_kl", "nll_oracle", "nll_test", "mean_reward")


@dataclass
class ScoringConfig:
    """One scoring protocol; the defaults are the reference table's."""

    variant: str = "SeqGAN-Tiny-v0"
    seeds: tuple[int, ...] = (0, 1, 2)
    updates: int = 20
    """Agent updates per seed."""
    batch_size: int = 32
    """Episodes per update (the training env's ``num_envs``)."""
    reward: str = "monte_carlo"
    """The training reward: the base D's (fixed) or a control."""
    eval_samples: int = 1000
    """Sequences the agent writes for the evaluation."""


def load_agent_factory(spec: str) -> Any:
    """``module:function`` -> the function (``function(generator, envs, seed) -> Agent``)."""
    factory = load_object(spec, "agent")
    if not callable(factory):
        raise ValueError(f"agent {spec!r} is not callable")
    return factory


def prepare_base(out: Path, variant: str, progress: bool = False) -> Path:
    """G pretrained by MLE and D against it, for ``variant``: trained once into ``out/base``."""
    from train.pipeline import Run

    if variant not in VARIANT_TRAIN_PRESETS:
        raise ValueError(f"scoring runs on a synthetic variant with an oracle: one of {sorted(VARIANT_TRAIN_PRESETS)}")
    base = out / "base"
    if (base / "summary.json").exists():
        return base
    config = get_train_config(VARIANT_TRAIN_PRESETS[variant])
    config.adversarial.steps = 0
    if variant in BASE_D_SCHEDULES:
        config.d_pretrain = copy.deepcopy(BASE_D_SCHEDULES[variant])
    preset = get_preset(config.model_preset)
    Run(base, config, resolve_oracle("builtin", preset), resume=(base / "checkpoint.pt").exists(),
        progress=progress).run()
    return base


def _train(agent: Agent, envs: Any, updates: int, rng: torch.Generator) -> list[dict[str, float]]:
    history = []
    for _ in range(updates):
        seed = int(torch.randint(2**31 - 1, (1,), generator=rng))
        update = getattr(agent, "update", None)
        history.append(update(seed) if callable(update) else agent.learn(collect_episodes(envs, agent, seed=seed)))
    return history


def score_seed(agent_spec: str, config: ScoringConfig, base: Path, seed: int) -> dict[str, Any]:
    """Train ``agent_spec`` on one seed from the base and evaluate it (steps 2 and 3 of the protocol)."""
    payload = load_checkpoint(base / "checkpoint.pt", "training-run")
    preset = get_preset(payload["config"]["model_preset"])
    oracle = resolve_oracle("builtin", preset)
    base_generator = load_model(base / "generator.pt", "generator")
    base_discriminator = load_model(base / "discriminator.pt", "discriminator").eval()
    factory = load_agent_factory(agent_spec)
    reads = get_reward_kind(config.reward).arguments

    torch.manual_seed(seed)
    models = {"discriminator": copy.deepcopy(base_discriminator), "rollout_policy": copy.deepcopy(base_generator)}
    envs = gym.make_vec(config.variant, num_envs=config.batch_size, reward=config.reward,
                        **{k: v for k, v in models.items() if k in reads})
    agent = factory(copy.deepcopy(base_generator), envs, seed)
    if not isinstance(agent, Agent):
        raise TypeError(f"agent {agent_spec!r} built a {type(agent).__name__}, not an agents.Agent")
    if agent.rollout_policy is not None and seqgan_env.reward_wrapper(envs).reward_model.uses_rollout_policy:
        seqgan_env.set_rollout_policy(envs, agent.rollout_policy)
    started = time.time()
    history = _train(agent, envs, config.updates, torch.Generator().manual_seed(1000 + seed))
    train_time = time.time() - started
    envs.close()

    eval_envs = gym.make_vec(config.variant, num_envs=config.eval_samples, discriminator=base_discriminator,
                             rollout_policy=base_generator)
    batch = collect_episodes(eval_envs, agent, seed=10_000 + seed)
    eval_envs.close()
    result: dict[str, Any] = {
        "seed": seed, "updates": len(history), "train_time_s": round(train_time, 2),
        "nll_oracle": oracle.nll(torch.as_tensor(batch.sequences)),
        "mean_reward": float((batch.rewards * batch.mask).sum() / batch.mask.sum()),
    }
    generator = getattr(agent, "generator", None)
    if isinstance(generator, TokenLSTM):
        with torch.no_grad():
            test = payload["test"]
            own = score_sequences(generator, test)
            result["nll_test"] = float(-own.log_probs.sum() / own.tokens.sum())
            result["forward_kl"] = per_token_divergence(score_sequences(oracle, test).log_probs, own.log_probs,
                                                        own.tokens).value
            # The generator's own samples: an agent may write its evaluation sequences otherwise.
            drawn = generator.sample(min(config.eval_samples, 2000), torch.Generator().manual_seed(20_000 + seed))
            result["reverse_kl"] = reverse_kl(generator, oracle, drawn).value
    return result


def score_agent(agent_spec: str, config: ScoringConfig, out: str | Path, progress: bool = False) -> dict[str, Any]:
    """The whole protocol for one agent: per-seed results and their means with 95% intervals."""
    if config.reward not in TRAIN_REWARDS:
        raise ValueError(f"--reward must be one of {list(TRAIN_REWARDS)}, got {config.reward!r}")
    if not config.seeds:
        raise ValueError("scoring needs at least one seed")
    load_agent_factory(agent_spec)  # a bad spec fails before the base is trained
    out = Path(out)
    base = prepare_base(out, config.variant, progress)
    runs = [score_seed(agent_spec, config, base, seed) for seed in config.seeds]
    summary = {}
    for metric in METRICS:
        values = [run[metric] for run in runs if metric in run]
        if values:
            mean, ci = mean_ci(values)
            summary[metric] = {"mean": round(mean, 4), "ci95": round(ci, 4)}
    result = {"agent": agent_spec, "config": {**asdict(config), "seeds": list(config.seeds)},
              "summary": summary, "runs": runs}
    name = agent_spec.replace(":", "_").replace("/", "_") + ("" if config.reward == "monte_carlo"
                                                             else f"-{config.reward}")
    (out / f"score-{name}.json").write_text(json.dumps(result, indent=1))
    return result
