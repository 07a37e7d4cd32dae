"""Pretraining: the generator by maximum likelihood, the discriminator on real vs. generated.

Both follow the original SeqGAN protocol (Yu et al., 2017): G by MLE with Adam (lr 0.01),
batch 64 and gradient-norm clipping at 5.0; D with Adam (lr 1e-4), batch 64, on equal
numbers of real sequences and fresh generator samples, several epochs per draw of negatives.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.precision import adam, training_autocast
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator
from train.losses import token_cross_entropy


@dataclass
class MLEConfig:
    """Maximum-likelihood pretraining of the generator."""

    epochs: int = 120
    """Passes over the real data (120 in the original code)."""
    batch_size: int = 64
    """Sequences per gradient step."""
    lr: float = 0.01
    """Adam learning rate."""
    grad_clip: float = 5.0
    """Gradient-norm clipping threshold."""


@dataclass
class DiscriminatorSchedule:
    """Training schedule of the discriminator (its architecture is :class:`seqgan_env.presets.DiscriminatorConfig`)."""

    rounds: int = 50
    """Draws of fresh negatives (50 for pretraining, 5 per adversarial step in the paper)."""
    epochs: int = 3
    """Epochs over (real + negatives) per draw."""
    num_negatives: int = 10_000
    """Generator samples per draw (the paper matches the 10,000 real sequences)."""
    batch_size: int = 64
    """Sequences per gradient step."""
    lr: float = 1e-4
    """Adam learning rate."""
    random_negatives: float = 0.0
    """Share of each draw's negatives that are uniformly random sequences instead of samples
    (0 in the paper; the embedded default uses 0.25 so that D also rejects random text)."""
    label_smoothing: float = 0.0
    """One-sided label smoothing α: real sequences are trained towards 1 - α (Salimans et al.,
    2016); 0 in the paper. See :func:`~seqgan_env.models.discriminator.fit_discriminator`."""
    weight_decay: float = 0.0
    """L2 penalty λ/2 · Σθ² on all of D's weights, added to its loss; 0 in the paper."""
    model: str = "cnn"
    """What D is (:func:`build_discriminator`): ``"cnn"``, the preset's CNN (the paper's), or
    ``"density_ratio"``, ``log p_M(x) - log p_G(x)`` with M a copy of the generator fitted to
    real data and G the generator itself (:class:`~seqgan_env.rewards.density_ratio.DensityRatioDiscriminator`)."""
    objective: str = "classifier"
    """How D learns: ``"classifier"``, cross-entropy on real against generated sequences (the
    paper's), or ``"likelihood"`` (``density_ratio`` only): M's maximum likelihood on the real
    sequences alone, the generator's samples serving only to report D's accuracy."""
    fresh_real: bool = False
    """Draw ``num_negatives`` fresh oracle sequences as each round's positives instead of
    sampling the fixed real data (False in the paper, whose D saw the same 10,000 throughout).
    Needs the oracle (synthetic data): :func:`train_discriminator`'s ``oracle``."""


    def __post_init__(self) -> None:
        if self.model not in ("cnn", "density_ratio"):
            raise ValueError(f"unknown discriminator model {self.model!r}; choose 'cnn' or 'density_ratio'")
        if self.objective not in ("classifier", "likelihood"):
            raise ValueError(f"unknown discriminator objective {self.objective!r}; choose 'classifier' or 'likelihood'")
        if self.objective == "likelihood" and self.model != "density_ratio":
            raise ValueError("objective='likelihood' fits a density_ratio discriminator's language model; "
                             f"a {self.model!r} discriminator is trained as a classifier")


REGULARISED_D: dict[str, float] = {"label_smoothing": 0.0, "weight_decay": 3e-3}
"""D regularisation against saturation, as :class:`DiscriminatorSchedule` fields
(``DiscriminatorSchedule(..., **REGULARISED_D)``): an L2 penalty (weight decay) of 3e-3 on all of
D's weights, no label smoothing.

Chosen by ``python -m benchmarks.d_regularisation`` (1 thread, fixed seeds): the paper's CNN D
over-trained against a fixed generator, then the Monte Carlo rewards of 64 generator samples.
Within-batch standard deviation of the rewards (mean over steps) / mean reward:

| setting | ``tiny``, vocab 512 | ``default`` |
|---|---|---|
| plain (the paper's D) | 0.133 / 0.054 | 0.079 / 0.060 |
| label smoothing 0.1 | 0.111 / 0.037 | 0.048 / 0.039 |
| label smoothing 0.3 | 0.104 / 0.046 | 0.039 / 0.038 |
| weight decay 1e-3 | 0.188 / 0.121 | 0.123 / 0.173 |
| weight decay 3e-3 | 0.223 / 0.176 | 0.138 / 0.287 |
| smoothing 0.2 + decay 1e-3 | 0.095 / 0.061 | 0.068 / 0.117 |

(``tiny``, vocabulary 512: untrained generator, 4 rounds x 10 epochs, lr 3e-2, 500 real
sequences; ``default``: 3 MLE epochs, 5 rounds x 5 epochs, lr 1e-3, 1,000 real sequences.)
Weight decay (an L2 penalty, Krogh and Hertz, 1992) keeps D's logits small, so P(real) of
generated sequences stays away from 0 and differs between them: the spread rose by half or
more while D's training accuracy stayed at 0.995-1.0. One-sided label smoothing (Salimans et al., 2016,
after Szegedy et al., 2016) *lowered* both the spread and the mean here: it only caps D's
confidence on real data, while the generated sequences' P(real), which is the reward, is
still driven to 0, and it undid most of weight decay's gain when combined with it. Weight
decay 1e-2 was too strong in a trial on ``tiny`` (vocabulary 64, 10 rounds x 3 epochs at lr
1e-2: D stopped learning, training accuracy 0.5, every reward 0.5), so 3e-3 keeps a factor of three
from that cliff. One seed per setting, on small presets: a choice to check on the paper's
oracle (``seqgan compare``'s ``monte_carlo-reg``), not a result about it.
"""


def mle_epoch(generator: Generator, data: torch.Tensor, optimizer: torch.optim.Optimizer,
              batch_size: int, grad_clip: float, rng: torch.Generator) -> float:
    """One shuffled pass of teacher-forced cross-entropy; returns the mean per-token NLL."""
    generator.train()
    order = torch.randperm(data.shape[0], generator=rng)
    total, batches = 0.0, 0
    for start in range(0, data.shape[0], batch_size):
        batch = data[order[start : start + batch_size]].to(generator.device)
        hidden = generator.hidden_states(batch)
        with training_autocast(generator.device):  # the (B x T, vocab) output layer: bfloat16 where native
            logits = generator.output(hidden)
        # PAD after an end token (text data) is no prediction: ignored. Float32 softmax; the
        # backward pass is one pass over the saved softmax (see train/losses.py).
        loss = token_cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1),
                                   ignore_index=generator.vocab_size)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), grad_clip)
        optimizer.step()
        total += loss.item()
        batches += 1
    generator.eval()
    return total / max(batches, 1)


def pretrain_generator(
    generator: Generator, data: torch.Tensor, config: MLEConfig, rng: torch.Generator,
    on_epoch: Callable[[int, float], dict[str, float] | None] | None = None, progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None, start_epoch: int = 0,
) -> list[float]:
    """MLE pretraining from ``start_epoch``; returns each epoch's training NLL.

    ``on_epoch(epoch, train_nll)`` is called after every epoch (numbered from 1), e.g. to
    evaluate, log and checkpoint; the metrics it returns, if any, go on the progress bar.
    """
    optimizer = optimizer or adam(generator.parameters(), config.lr)
    losses = []
    bar = tqdm(range(start_epoch, config.epochs), desc="MLE", disable=not progress, unit="epoch")
    for epoch in bar:
        loss = mle_epoch(generator, data, optimizer, config.batch_size, config.grad_clip, rng)
        losses.append(loss)
        shown = on_epoch(epoch + 1, loss) if on_epoch is not None else None
        bar.set_postfix({k: f"{v:.3f}" for k, v in (shown or {"train_nll": loss}).items()})
    return losses


def train_discriminator(
    discriminator: Discriminator | PrefixDiscriminator, generator: Generator, real: torch.Tensor, config: DiscriminatorSchedule,
    rng: torch.Generator, optimizer: torch.optim.Optimizer | None = None, progress: bool = False,
    desc: str = "D", oracle: Oracle | None = None,
) -> dict[str, float]:
    """``rounds`` x (fresh generator negatives, ``epochs`` epochs); returns the last round's stats.

    Either discriminator kind (the paper's CNN, the dense reward's PrefixDiscriminator, or a
    learned :class:`~seqgan_env.rewards.density_ratio.DensityRatioDiscriminator`), with the schedule's
    ``label_smoothing`` and ``weight_decay``; with ``fresh_real``, each round's positives are
    fresh samples of ``oracle``. The returned ``d_accuracy`` is that of the training epoch (on
    D's training positives); held-out figures come from :mod:`seqgan_env.diagnostics`."""
    if config.fresh_real and oracle is None:
        raise ValueError("this D schedule draws fresh real sequences every round (fresh_real=True): pass the "
                         "oracle (it needs synthetic data; on text use a schedule without fresh_real)")
    likelihood = config.objective == "likelihood"
    if likelihood and not isinstance(discriminator, DensityRatioDiscriminator):
        raise ValueError(f"objective='likelihood' trains a DensityRatioDiscriminator, got a {type(discriminator).__name__}")
    optimizer = optimizer or adam(discriminator.parameters(), config.lr)
    stats: dict[str, float] = {}
    for _ in tqdm(range(config.rounds), desc=desc, disable=not progress, unit="round"):
        if likelihood:
            stats = _fit_language_model(discriminator, generator, real, config, rng, optimizer, oracle)
            continue
        random_count = int(config.num_negatives * config.random_negatives)
        fake = generator.sample(config.num_negatives - random_count, rng)
        if random_count:
            noise = torch.randint(0, generator.vocab_size, (random_count, generator.seq_len), generator=rng)
            fake = torch.cat([fake, noise.to(fake.device)])
        if config.fresh_real:
            positives = oracle.sample(config.num_negatives, rng)
        elif real.shape[0] > config.num_negatives:
            positives = real[torch.randint(real.shape[0], (config.num_negatives,), generator=rng)]
        else:
            positives = real
        stats = fit_discriminator(discriminator, positives, fake, config.epochs, optimizer,
                                  config.batch_size, rng, label_smoothing=config.label_smoothing,
                                  weight_decay=config.weight_decay)
    return stats


def _fit_language_model(discriminator: DensityRatioDiscriminator, generator: Generator, real: torch.Tensor,
                        config: DiscriminatorSchedule, rng: torch.Generator, optimizer: torch.optim.Optimizer,
                        oracle: Oracle | None) -> dict[str, float]:
    """One round of the ``likelihood`` objective: M's MLE epochs on ``num_negatives`` real sequences
    (fresh ones with ``fresh_real``); D's loss is M's NLL and its accuracy that on this round's
    real sequences against as many fresh generator samples (1,000 of each at most)."""
    if config.fresh_real:
        positives = oracle.sample(config.num_negatives, rng)
    else:
        positives = real[torch.randperm(real.shape[0], generator=rng)[: config.num_negatives]]
    for _ in range(config.epochs):
        loss = mle_epoch(discriminator.numerator, positives, optimizer, config.batch_size, grad_clip=5.0, rng=rng)
    count = min(1_000, positives.shape[0])
    with torch.no_grad():
        correct = int((discriminator.log_ratio(positives[:count]) > 0).sum())
        correct += int((discriminator.log_ratio(generator.sample(count, rng)) <= 0).sum())
    return {"d_loss": loss, "d_accuracy": correct / (2 * count)}


D_SCHEDULES: dict[str, DiscriminatorSchedule] = {
    "paper": DiscriminatorSchedule(),
    "density-ratio": DiscriminatorSchedule(rounds=20, epochs=1, num_negatives=5_000, lr=1e-3, fresh_real=True,
                                           model="density_ratio", objective="likelihood"),
}
"""Named D schedules. ``paper``: the paper's CNN and schedule (the paper presets' default:
faithful, and on fresh data close to chance, see ``docs/discriminator.md``). ``density-ratio``:
the best of the D study, ``log p_M - log p_G`` with M the generator's copy fitted by MLE to fresh
real sequences (5,000 per round, Adam 1e-3)."""


def d_schedule(name: str) -> DiscriminatorSchedule:
    """A copy of the named D schedule (free to modify)."""
    try:
        return dataclasses.replace(D_SCHEDULES[name])
    except KeyError:
        raise ValueError(f"unknown D schedule {name!r}; choose one of {sorted(D_SCHEDULES)}") from None


def schedule_on_budget(name: str, budget: DiscriminatorSchedule) -> DiscriminatorSchedule:
    """The named schedule's D (model, objective, learning rate, epochs, fresh positives, ...) trained
    for ``budget``'s rounds on its number of sequences per round (a preset's D pretraining budget).
    ``paper`` is ``budget`` itself: a preset's own schedule is the paper's CNN at the preset's budget."""
    if name == "paper":
        return dataclasses.replace(budget)
    return dataclasses.replace(d_schedule(name), rounds=budget.rounds, num_negatives=budget.num_negatives)


def build_discriminator(schedule: DiscriminatorSchedule, preset: Any, generator: Generator) -> torch.nn.Module:
    """The untrained discriminator ``schedule`` trains: the preset's CNN, or a density ratio whose
    language model starts as a copy of ``generator`` (so its log ratio starts at 0 everywhere)
    and whose reference *is* ``generator``: trained in place, D follows it."""
    if schedule.model == "density_ratio":
        return DensityRatioDiscriminator(copy.deepcopy(generator), generator)
    return Discriminator.from_preset(preset).to(generator.device)
