"""The whole SeqGAN run as resumable phases: data, MLE, D pretraining, adversarial steps.

A run lives in one folder. ``checkpoint.pt`` (written atomically every
``config.checkpoint_every`` epochs, rounds or steps, and at every phase change) holds the
models, optimisers, agent, RNG states, data and the history of metrics, so a run killed at
any moment continues with ``resume=True`` from its last checkpoint and loses nothing that
was written. Metrics go to ``metrics.csv`` and TensorBoard (``tb/``): on synthetic data every
evaluation has the generator's divergences to the oracle per token, ``reverse_kl`` and
``forward_kl`` with their standard errors (:func:`train.adversarial.evaluate`; real text has no
oracle, so they are n/a there, as ``summary.json`` says), and in the adversarial phase ``kl`` and
``kl_stderr``, the generator's KL to the MLE generator (``generator_mle.pt``, written when MLE
ends) per sequence; ``learning_curve.png`` plots NLL-oracle against epochs, as the paper's
figure does, and beside it the two divergences.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from agents.reinforce import ReinforceAgent
from seqgan_env.checkpoint import (
    FORMAT,
    CheckpointError,
    atomic_save,
    global_rng_state,
    load_checkpoint,
    save_model,
    set_global_rng_state,
)
from seqgan_env.devices import resolve_device
from seqgan_env.divergence import NO_ORACLE, ScoredSequences, score_sequences
from seqgan_env.factory import resolve_discriminator, resolve_rollout_policy
from seqgan_env.metrics import ReferenceSet, bleu, self_bleu
from seqgan_env.models import Generator, Oracle
from seqgan_env.precision import adam
from seqgan_env.presets import get_preset
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator, save_density_ratio
from seqgan_env.rewards.reference_penalty import with_reference_penalty
from seqgan_env.rewards.registry import get_reward_kind
from seqgan_env.text import Corpus, Vocabulary, text_preset
from train import algorithms
from train.adversarial import (
    adversarial_train,
    discriminator_diagnostics,
    evaluate,
    frozen_generator,
    reinforce_step,
    sb3_step,
)
from train.config import TrainConfig, check_train_reward
from train.pretrain import build_discriminator, pretrain_generator, train_discriminator
from train.run_plots import plot_learning_curve

PHASES = ("mle", "d_pretrain", "adversarial", "done")
HEADLINE = ("reverse_kl", "forward_kl", "nll_oracle", "nll_test", "bleu3")
"""Metrics shown on the progress bar."""
ALGOS = algorithms.names(train=True)
"""The adversarial phase's updates (``--algo``): the entries of :data:`train.algorithms.ALGORITHMS` that
``seqgan train`` offers (their agents save and load their whole state, so a run resumes exactly)."""


@dataclass
class RunState:
    """Where a run is: the phase and how far into it."""

    phase: str = "mle"
    mle_epochs: int = 0
    d_rounds: int = 0
    adversarial_steps: int = 0
    wall_time: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def progress(self) -> int:
        """Epochs, rounds and steps done in all phases: the step of TensorBoard's logs, one per logged row."""
        return self.mle_epochs + self.d_rounds + self.adversarial_steps


class Run:
    """One SeqGAN training run in ``out``; see the module docstring.

    Args:
        out: the run's folder.
        config: the schedule (ignored on resume: the checkpoint's own is used).
        oracle: the oracle providing real data and NLL-oracle (synthetic data), or ``None``.
        resume: continue from ``out/checkpoint.pt`` (which must exist).
        progress: show progress bars.
        payload: the checkpoint, when the caller has read it already (:meth:`load_payload`).
        corpus: real text instead of an oracle: its training split is the real data, its
            test split gives NLL-test and the BLEU references; its vocabulary is saved with
            the checkpoint and the generator. Not needed on resume.
    """

    def __init__(self, out: str | Path, config: TrainConfig, oracle: Oracle | None = None, resume: bool = False,
                 progress: bool = True, payload: dict[str, Any] | None = None, corpus: Corpus | None = None) -> None:
        self.out = Path(out)
        self.checkpoint_path = self.out / "checkpoint.pt"
        self.progress = progress
        self.oracle = oracle
        self.vocab: Vocabulary | None = corpus.vocab if corpus is not None else None
        if resume:
            payload = payload or self.load_payload(out)
            config = TrainConfig.from_dict(payload["config"])
            if payload.get("vocabulary") is not None:
                self.vocab = Vocabulary.from_dict(payload["vocabulary"])
            elif oracle is None:
                raise ValueError("resuming a run on synthetic data needs its oracle")
            elif abs(payload.get("oracle_fingerprint", 0.0) - oracle_fingerprint(oracle)) > 1e-3:
                raise CheckpointError(f"{self.checkpoint_path} was trained against another oracle; resume with the same --oracle")
        elif self.checkpoint_path.exists():
            raise FileExistsError(f"{self.out} already holds a run; pass resume=True (--resume) or another folder")
        elif (oracle is None) == (corpus is None):
            raise ValueError("a run needs exactly one source of real data: an oracle or a text corpus")
        if config.d_pretrain.fresh_real and oracle is None:
            raise ValueError(f"the D schedule {config.d_schedule!r} draws fresh oracle sequences as D's real data; "
                             "real text has no oracle: use --d-schedule paper")
        check_train_reward(config)
        self.config = config
        self.device = resolve_device(config.device, "device")
        if self.vocab is not None:
            length = corpus.max_length if corpus is not None else int(payload["real"].shape[1])
            self.preset = text_preset(get_preset(config.model_preset), self.vocab, length)
        else:
            self.preset = get_preset(config.model_preset).replace(
                vocab_size=oracle.vocab_size, seq_len=oracle.seq_len, start_token=oracle.start_token)
        torch.manual_seed(config.seed)
        self.rng = torch.Generator().manual_seed(config.seed)  # CPU: data shuffles; samplers derive their own
        shipped = config.start_from_shipped
        self.generator = resolve_rollout_policy(None, self.preset) if shipped else Generator.from_preset(self.preset)
        self.generator.to(self.device)  # the run's own models: moved in place, before their optimisers exist
        if shipped and config.d_pretrain.model == "cnn":
            self.discriminator = resolve_discriminator(None, self.preset).to(self.device)
        else:  # a density ratio is rebuilt from the MLE generator after MLE (_mle); on resume, loaded
            self.discriminator = build_discriminator(config.d_pretrain, self.preset, self.generator)
        self.g_optimizer = adam(self.generator.parameters(), config.mle.lr)
        self.d_optimizer = adam(self.discriminator.parameters(), config.d_pretrain.lr)
        if config.algo not in algorithms.names(train=True):
            raise ValueError(f"unknown algorithm {config.algo!r}; choose one of {list(algorithms.names(train=True))}")
        self.algorithm = algorithms.get_algorithm(config.algo)
        self.reference: Generator | None = None
        """pi_ref of the adversarial phase's KL (measured, and penalised with ``config.kl_beta``): the MLE generator."""
        self.agent: ReinforceAgent | None = None
        self.sb3_model: Any = None
        self.sb3_state: dict[str, Any] | None = None
        self.state = RunState()
        if resume:
            self._restore(payload)
        elif corpus is not None:
            self.real, self.test = corpus.train, corpus.test
        else:
            self.real = oracle.sample(config.real_samples, self.rng)
            self.test = oracle.sample(config.test_samples, self.rng)
        self.references = ReferenceSet(self._decode(self.test), max_order=5) if self.vocab is not None else None
        self._test_scores: ScoredSequences | None = None
        """The oracle's scores of the test set (fixed for the run): ``forward_kl`` of every evaluation."""

    @staticmethod
    def load_payload(out: str | Path) -> dict[str, Any]:
        """The checkpoint of the run saved in ``out``; pass it back as ``payload`` to resume."""
        return load_checkpoint(Path(out) / "checkpoint.pt", "training-run")

    @staticmethod
    def extend_payload(payload: dict[str, Any], steps: int) -> None:
        """Make a saved run's checkpoint continue to ``steps`` adversarial steps (at least those done)."""
        state, adversarial = payload["state"], payload["config"]["adversarial"]
        if steps < state["adversarial_steps"]:
            raise ValueError(f"cannot continue to {steps} adversarial steps: the run has already done "
                             f"{state['adversarial_steps']}")
        adversarial["steps"] = steps
        if state["phase"] == "done" and steps > state["adversarial_steps"]:
            state["phase"] = "adversarial"

    # -- checkpoints ---------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        sb3 = None
        if self.sb3_model is not None:
            from agents.sb3 import sb3_state_dict

            sb3 = sb3_state_dict(self.sb3_model)
        return {
            "format": FORMAT, "kind": "training-run", "config": self.config.to_dict(),
            "state": {**self.state.__dict__},
            "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(), "d_optimizer": self.d_optimizer.state_dict(),
            "agent": self.agent.state_dict() if self.agent is not None else None,
            "sb3": sb3,
            "rng": self.rng.get_state(), "global_rng": global_rng_state(),
            "real": self.real, "test": self.test,
            "oracle_fingerprint": oracle_fingerprint(self.oracle) if self.oracle is not None else None,
            "vocabulary": self.vocab.to_dict() if self.vocab is not None else None,
        }

    def _restore(self, payload: dict[str, Any]) -> None:
        if payload.get("sb3_model") is not None:
            raise CheckpointError(
                f"{self.checkpoint_path} holds SB3's own archive (written by an earlier version), which loads "
                "through cloudpickle and could run code; it is not read. Start the run again")
        try:
            self.state = RunState(**payload["state"])
            self.generator.load_state_dict(payload["generator"])
            self.discriminator.load_state_dict(payload["discriminator"])
            self.g_optimizer.load_state_dict(payload["g_optimizer"])
            self.d_optimizer.load_state_dict(payload["d_optimizer"])
            if payload["agent"] is not None:
                self.agent = self._make_agent()
                self.agent.load_state_dict(payload["agent"])
            self.sb3_state = payload.get("sb3")
            self.rng.set_state(payload["rng"])
            if "global_rng" in payload:
                set_global_rng_state(payload["global_rng"])
            else:  # written before NumPy's and Python's states were saved too
                torch.set_rng_state(payload["torch_rng"])
            self.real, self.test = payload["real"], payload["test"]
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.checkpoint_path}: does not hold a usable training run ({exc})") from exc

    def _vocabulary(self) -> dict[str, Any]:
        """What a saved generator carries besides its weights: the vocabulary, for text runs."""
        return {"vocabulary": self.vocab.to_dict()} if self.vocab is not None else {}

    def save(self) -> None:
        atomic_save(self._payload(), self.checkpoint_path)

    # -- logging -------------------------------------------------------------------------
    def _log(self, phase: str, step: int, stats: dict[str, float], writer: Any) -> None:
        epoch = self.state.mle_epochs + (self.state.adversarial_steps if phase == "adversarial" else 0)
        row = {"phase": phase, "step": step, "epoch": epoch, **stats}
        self.state.history.append(row)
        for key, value in stats.items():
            writer.add_scalar(f"{phase}/{key}", value, self.state.progress)

    def write_logs(self) -> None:
        """``metrics.csv`` from the history (rewritten whole, so a resumed run has no duplicates)."""
        rows = self.state.history
        fields = ["phase", "step", "epoch"] + sorted({k for r in rows for k in r} - {"phase", "step", "epoch"})
        with (self.out / "metrics.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    # -- evaluation ----------------------------------------------------------------------
    def _decode(self, sequences: torch.Tensor) -> list[list[str]]:
        assert self.vocab is not None
        return [self.vocab.decode_tokens(row) for row in sequences.tolist()]

    def evaluate(self) -> dict[str, float]:
        """NLL-oracle, ``reverse_kl`` and ``forward_kl`` (synthetic data) or BLEU against the test split
        (text), NLL-test, entropy."""
        cfg = self.config
        if self.oracle is not None and self._test_scores is None:
            self._test_scores = score_sequences(self.oracle, self.test)
        stats, samples = evaluate(self.generator, self.oracle, self.test, cfg.adversarial.eval_samples,
                                  self._evaluation_rng(), return_samples=True, reference=self.reference,
                                  test_scores=self._test_scores)
        if self.references is not None:
            hypotheses = self._decode(samples[: cfg.bleu_samples])
            stats.update({f"bleu{n}": v for n, v in bleu(hypotheses, self.references, (2, 3, 4, 5)).items()})
            stats.update({f"self_bleu{n}": v for n, v in self_bleu(hypotheses, (2, 3, 4)).items()})
        # D on sequences it never trained on, once it has been trained (and only where the reward reads it)
        if self.state.phase != "mle" and get_reward_kind(cfg.reward).discriminator is not None:
            stats.update(self._d_diagnostics())
        return stats

    def _d_diagnostics(self) -> dict[str, float]:
        """D's held-out metrics (``d_heldout_*``): fresh oracle samples (or the test split) against
        fresh samples of the current generator, 2,000 of each at most."""
        count = min(2_000, self.config.adversarial.eval_samples)
        return discriminator_diagnostics(self.discriminator, self.generator, self._held_out, count,
                                         self._evaluation_rng())

    @property
    def _held_out(self) -> Oracle | torch.Tensor:
        """Real sequences D never trains on: the oracle's fresh samples, else the test split."""
        return self.oracle if self.oracle is not None else self.test

    def _evaluation_rng(self) -> torch.Generator:
        """A generator of its own for each evaluation, seeded from the run's seed and the step.

        Evaluations draw many samples; from the training generator they would make the
        training trajectory depend on how often the run evaluates. The step is the number of
        rows logged so far (one per epoch, round or step, whether evaluated or not), which
        differs between any two evaluations of a run.
        """
        step = len(self.state.history)
        seed = np.random.SeedSequence([self.config.seed, step]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(seed))

    # -- phases --------------------------------------------------------------------------
    def _make_agent(self) -> ReinforceAgent:
        extra = {"kl_beta": self.config.kl_beta} if self.config.kl_beta else {}
        return self.algorithm.make_agent(self.generator, None, self.config.seed, **extra)

    def run(self) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        self.out.mkdir(parents=True, exist_ok=True)
        started = time.time() - self.state.wall_time
        # On resume, TensorBoard drops the events logged after the checkpoint (they are logged again).
        purge_step = self.state.progress + 1 if self.state.history else None
        with SummaryWriter(str(self.out / "tb"), purge_step=purge_step) as writer:
            if self.state.phase == "mle":
                self._mle(writer, started)
            if self.state.phase == "d_pretrain":
                self._d_pretrain(writer, started)
            if self.state.phase == "adversarial":
                self._adversarial(writer, started)
        return self.finish()

    def _checkpoint(self, started: float) -> None:
        self.state.wall_time = time.time() - started
        self.save()
        self.write_logs()

    def _mle(self, writer: Any, started: float) -> None:
        cfg = self.config
        if self.state.mle_epochs == 0:
            self._log("mle", 0, self.evaluate(), writer)

        def on_epoch(epoch: int, loss: float) -> dict[str, float]:
            self.state.mle_epochs = epoch
            stats: dict[str, float] = {"train_nll": loss}
            if epoch % cfg.mle_eval_every == 0 or epoch == cfg.mle.epochs:
                stats.update(self.evaluate())
            stats["wall_time"] = time.time() - started
            self._log("mle", epoch, stats, writer)
            if epoch % cfg.checkpoint_every == 0:
                self._checkpoint(started)
            return {k: stats[k] for k in HEADLINE if k in stats}

        pretrain_generator(self.generator, self.real, cfg.mle, self.rng, on_epoch=on_epoch, progress=self.progress,
                           optimizer=self.g_optimizer, start_epoch=self.state.mle_epochs)
        self.state.phase = "d_pretrain"
        if self.config.d_pretrain.model != "cnn":  # its language model starts as the MLE generator's copy
            self.discriminator = build_discriminator(self.config.d_pretrain, self.preset, self.generator)
            self.d_optimizer = adam(self.discriminator.parameters(), self.config.d_pretrain.lr)
        # The MLE generator on its own, to compare with or sample from after SeqGAN.
        save_model(self.generator, self.out / "generator_mle.pt", **self._vocabulary())
        self._checkpoint(started)

    def _d_pretrain(self, writer: Any, started: float) -> None:
        cfg = self.config
        one_round = dataclasses.replace(cfg.d_pretrain, rounds=1)
        bar = tqdm(range(self.state.d_rounds, cfg.d_pretrain.rounds), desc="D pretraining", unit="round",
                   disable=not self.progress)
        for _ in bar:
            stats = train_discriminator(self.discriminator, self.generator, self.real, one_round, self.rng,
                                        self.d_optimizer, oracle=self.oracle)
            self.state.d_rounds += 1
            # Accuracy in D's training epoch, on its training positives: named so.
            stats = {"d_loss": stats["d_loss"], "d_train_accuracy": stats["d_accuracy"]}
            if self.state.d_rounds == cfg.d_pretrain.rounds:
                stats.update(self._d_diagnostics())
            bar.set_postfix(d_train_accuracy=f"{stats['d_train_accuracy']:.3f}")
            self._log("d_pretrain", self.state.d_rounds, {**stats, "wall_time": time.time() - started}, writer)
            if self.state.d_rounds % cfg.checkpoint_every == 0:
                self._checkpoint(started)
        self.state.phase = "adversarial"
        self._checkpoint(started)

    def _adversarial(self, writer: Any, started: float) -> None:
        cfg = self.config.adversarial
        # The MLE generator, written before any adversarial step: a resumed run finds the same one.
        self.reference = frozen_generator(self.out / "generator_mle.pt", self.device)
        envs = gym.make_vec("SeqGAN-v0", num_envs=cfg.batch_size, preset=self.preset, device=self.device,
                            **self._reward_arguments(cfg))
        if self.config.kl_beta:  # the reference's half of the KL-regularised reward; the agent adds its own
            envs = with_reference_penalty(envs, self.reference, self.config.kl_beta)
        if self.algorithm.family == "reinforce":
            if self.agent is None:
                self.agent = self._make_agent()
            if get_reward_kind(self.config.reward).uses_rollout_policy:
                seqgan_env.set_rollout_policy(envs, self.agent.rollout_policy)
            g_step = reinforce_step(self.agent, envs)
        else:  # SB3's actor is copied into self.generator after every update: it is the rollout policy
            g_step = sb3_step(self._sb3_model(envs), self.generator, algorithms.sb3_kl_callback(self.config.kl_beta))

        def on_step(step: int, stats: dict[str, float]) -> None:
            self.state.adversarial_steps = step
            stats["wall_time"] = time.time() - started
            self._log("adversarial", step, stats, writer)
            if step % self.config.checkpoint_every == 0:
                self._checkpoint(started)

        reads_d = get_reward_kind(self.config.reward).discriminator is not None
        adversarial_train(g_step, self.generator, envs, self.discriminator if reads_d else None, self.real, cfg, self.rng,
                          self.d_optimizer, start_step=self.state.adversarial_steps, on_step=on_step,
                          progress=self.progress, evaluator=self.evaluate, held_out=self._held_out,
                          d_schedule=self.config.d_pretrain)
        self.state.phase = "done"
        self._checkpoint(started)

    def _reward_arguments(self, cfg: Any) -> dict[str, Any]:
        """The env's reward of the adversarial phase: the paper's (D's Monte Carlo reward, in its
        form), or the exact-regret task (D* per token against the MLE generator, no D)."""
        if self.config.reward == "monte_carlo":
            return dict(reward="monte_carlo", discriminator=self.discriminator, rollout_policy=self.generator,
                        num_rollouts=cfg.num_rollouts, reward_form=self.config.reward_form)
        return dict(reward=self.config.reward, oracle=self.oracle, reference=self.reference)

    def _sb3_model(self, envs: Any) -> Any:
        from stable_baselines3.common.vec_env import VecMonitor

        from agents.sb3 import SB3VecEnvAdapter, sb3_from_state_dict

        venv = VecMonitor(SB3VecEnvAdapter(envs))
        if self.sb3_state is not None:  # resuming: rebuilt from tensors and plain data by our code
            try:
                self.sb3_model = sb3_from_state_dict(self.sb3_state, venv, device=self.device)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise CheckpointError(f"{self.checkpoint_path}: its SB3 state is not usable ({exc!r})") from exc
        else:
            self.sb3_model = self.algorithm.make_agent(venv, generator=self.generator, seed=self.config.seed,
                                                       device=self.device)
        return self.sb3_model

    def finish(self) -> dict[str, Any]:
        """Final models, the learning-curve figure and ``summary.json``."""
        save_model(self.generator, self.out / "generator.pt", **self._vocabulary())
        if isinstance(self.discriminator, DensityRatioDiscriminator):  # its language model; the reference is G
            save_density_ratio(self.discriminator, self.out / "discriminator.pt")
        else:
            save_model(self.discriminator, self.out / "discriminator.pt")
        plot_learning_curve(self.state.history, self.out / "learning_curve.png")
        evaluated = [r for r in self.state.history if "nll_test" in r]
        summary = {
            "config": self.config.to_dict(), "wall_time_s": round(self.state.wall_time, 1),
            "after_mle": next((r for r in reversed(evaluated) if r["phase"] == "mle"), None),
            "final": evaluated[-1] if evaluated else None,
        }
        if self.oracle is None:  # said, not silently missing
            summary["reverse_kl"] = summary["forward_kl"] = NO_ORACLE
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary


def oracle_fingerprint(oracle: Oracle) -> float:
    """A number that tells oracles apart (the sum of all parameters)."""
    return float(sum(float(p.double().sum()) for p in oracle.parameters()))
