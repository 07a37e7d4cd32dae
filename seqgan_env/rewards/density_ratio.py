"""The Bayes-optimal discriminator, and discriminators that are a ratio of two densities.

For data drawn half from ``p_data`` and half from a generator ``p_G``, the discriminator that
minimises GAN's cross-entropy is

    D*(x) = p_data(x) / (p_data(x) + p_G(x))                (Goodfellow et al., 2014, Prop. 1)

whose logit is the log density ratio ``log p_data(x) - log p_G(x)``; against it the
generator's objective is ``2 JSD(p_data || p_G) - log 4``, minimised exactly at ``p_G =
p_data`` (Thm. 1). On the synthetic benchmark both densities are known: the oracle LSTM and
the generator are autoregressive models whose sequence log-likelihood is the sum of their
per-token log-probabilities. So D* is computed exactly, with no training: it is the ceiling of
what any learned discriminator can tell the generator, the control at the other end from the
``random`` reward.

:class:`DensityRatioDiscriminator` holds any two token models (``numerator`` and
``reference``) and scores ``sigmoid(log p_numerator(x) - log p_reference(x))``;
:class:`OptimalDiscriminator` is the case ``numerator = the oracle``. A *learned* density-ratio
discriminator replaces the oracle by a language model fitted to real data (see
``docs/discriminator.md``). Both are drop-in :class:`~seqgan_env.models.Discriminator` objects
for the Monte Carlo and terminal rewards: ``score``, and the pooled-feature path of the Monte
Carlo engine (:func:`~seqgan_env.rollout.monte_carlo_rewards`) with one "feature", the log
ratio of the whole completed sequence (the prefix's part is ``-inf``, so the engine's max of
prefix and completion features is the completion's log ratio). The reference can be swapped
(:meth:`DensityRatioDiscriminator.set_reference`); when it *is* the policy being trained, D*
follows every update, since it reads the reference's current weights at each call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqgan_env.checkpoint import CheckpointError, atomic_save, load_checkpoint, model_from_payload, model_payload
from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.models.oracle import Oracle
from seqgan_env.precision import parameter_versions
from seqgan_env.presets import DiscriminatorConfig


def sequence_log_likelihood(model: TokenLSTM, tokens: torch.Tensor, batch_size: int = 1024,
                            first: int = 0, shared: int = 0) -> torch.Tensor:
    """``log p_model(x)`` of each row of ``(B, T)`` tokens, ``(B,)`` float32: the sum of its
    per-token log-probabilities; PAD positions (ids ``>= vocab_size``, after an end token) are
    not tokens and count nothing. ``first``: only positions from ``first`` on count (``log p(x_first..
    | x_<first)``, a completion given its prompt). Differentiable where gradients are enabled.

    ``shared``: runs of consecutive rows that agree on their first ``shared`` tokens (the Monte
    Carlo completions of one prefix) score those positions once per run. Without gradients the
    output layer is computed a chunk of rows at a time, used while it is in cache
    (:meth:`TokenLSTM.taken_log_probs`), in float32 as the plain path."""
    if tokens.dim() != 2:
        raise ValueError(f"expected (batch, length) token ids, got shape {tuple(tokens.shape)}")
    if torch.is_grad_enabled() and any(p.requires_grad for p in model.parameters()):
        return _differentiable_log_likelihood(model, tokens, batch_size, first)
    out = []
    for start in range(0, tokens.shape[0], batch_size):
        chunk = tokens[start : start + batch_size].to(model.device)
        out.append(_shared_prefix_log_likelihood(model, chunk, first, min(shared, chunk.shape[1])))
    return torch.cat(out) if out else torch.empty(0, device=model.device)


def _differentiable_log_likelihood(model: TokenLSTM, tokens: torch.Tensor, batch_size: int,
                                   first: int) -> torch.Tensor:
    out = []
    for start in range(0, tokens.shape[0], batch_size):
        chunk = tokens[start : start + batch_size].to(model.device)
        log_probs = model.log_probs(chunk).float()
        skip = chunk >= model.vocab_size
        if first:
            skip = skip | (torch.arange(chunk.shape[1], device=chunk.device) < first)
        out.append(log_probs.masked_fill(skip, 0.0).sum(dim=1))
    return torch.cat(out) if out else torch.empty(0, device=model.device)


@torch.no_grad()
def _shared_prefix_log_likelihood(model: TokenLSTM, tokens: torch.Tensor, first: int, shared: int) -> torch.Tensor:
    hidden = model.hidden_states(tokens)  # the recurrence is cheap; the output layer is what costs
    rows, length = tokens.shape
    start = max(first, shared)
    total = torch.zeros(rows, dtype=torch.float32, device=tokens.device)
    if start < length:
        part = tokens[:, start:]
        total += model.taken_log_probs(hidden[:, start:].reshape(-1, hidden.shape[-1]), part.reshape(-1)).view(
            rows, -1).masked_fill(part >= model.vocab_size, 0.0).sum(1)
    if first < shared:  # positions [first, shared): once per run of rows with the same prefix
        _, inverse, counts = torch.unique_consecutive(tokens[:, :shared], dim=0, return_inverse=True,
                                                      return_counts=True)
        leaders = torch.cumsum(counts, 0) - counts
        part = tokens[leaders, first:shared]
        prefix = model.taken_log_probs(hidden[leaders, first:shared].reshape(-1, hidden.shape[-1]),
                                       part.reshape(-1)).view(leaders.shape[0], -1).masked_fill(
            part >= model.vocab_size, 0.0).sum(1)
        total += prefix[inverse]
    return total


def _check_token_model(model: Any, role: str) -> None:
    if not isinstance(model, TokenLSTM):
        raise TypeError(f"the {role} must be a seqgan_env token model (Oracle or Generator), "
                        f"got {type(model).__name__}")


class DensityRatioDiscriminator(Discriminator):
    """P(real | x) = sigmoid(log p_numerator(x) - log p_reference(x)), computed, not trained.

    Args:
        numerator: the model of real data (the oracle for D*, or a language model fitted to
            real sequences).
        reference: the generator whose samples D tells apart (e.g. the MLE generator, or the
            policy being trained).
        batch_size: rows scored together.
        prompt_length: ``k``, for prompted episodes (the generated sequences are real prompts
            completed by the reference): the log ratio is summed over positions ``>= k``. That is
            still the Bayes-optimal score of the whole sequence: real and generated sequences
            share the prompt's density p_numerator(x_<k), which cancels from the ratio.

    D's parameters are the numerator's alone: the reference is read, never trained through D
    (it is held outside the module's registry, so ``parameters()``, ``state_dict()`` and an
    optimiser over D leave the generator alone). A learned numerator is trained with the
    project's D step (:func:`~seqgan_env.models.discriminator.fit_discriminator`): its
    two-class cross-entropy on ``[0, log ratio]`` is the logistic loss of the log ratio.
    """

    def __init__(self, numerator: TokenLSTM, reference: TokenLSTM, batch_size: int = 1024,
                 prompt_length: int = 0) -> None:
        nn.Module.__init__(self)  # none of the CNN's layers: the two models are the whole discriminator
        _check_token_model(numerator, "numerator")
        if not 0 <= prompt_length < numerator.seq_len:
            raise ValueError(f"prompt_length must be in [0, {numerator.seq_len}), got {prompt_length}")
        self.prompt_length = int(prompt_length)
        self.numerator = numerator
        self.vocab_size = numerator.vocab_size
        self.seq_len = numerator.seq_len
        self.pad_token = numerator.vocab_size
        self.batch_size = batch_size
        self.config = DiscriminatorConfig(l2_reg=0.0)  # no output-layer penalty (fit_discriminator reads it)
        self._fast_cache = {}
        self.set_reference(reference)

    def set_reference(self, reference: TokenLSTM) -> None:
        """Tell real data apart from ``reference`` from the next call on (e.g. the current policy)."""
        _check_token_model(reference, "reference generator")
        if reference.vocab_size != self.vocab_size:
            raise ValueError(f"the reference generator has a vocabulary of {reference.vocab_size} tokens, "
                             f"the {self._numerator_name} {self.vocab_size}")
        if reference.seq_len != self.seq_len:
            raise ValueError(f"the reference generator writes sequences of {reference.seq_len} tokens, "
                             f"the {self._numerator_name} {self.seq_len}")
        if reference.eos_token != self.numerator.eos_token:
            raise ValueError(f"the reference generator's end token is {reference.eos_token}, the "
                             f"{self._numerator_name}'s {self.numerator.eos_token}: they model different sequences")
        object.__setattr__(self, "_reference", reference)  # not a submodule: see the class docstring

    @property
    def reference(self) -> TokenLSTM:
        """The generator whose samples D tells apart."""
        return self._reference

    _numerator_name = "numerator model"

    @property
    def device(self) -> torch.device:
        return self.numerator.device

    def config_dict(self) -> dict[str, Any]:
        raise TypeError(f"a {type(self).__name__} is computed from its two models and is not saved as "
                        "a discriminator: save_density_ratio(D, path) saves a learned numerator; "
                        "save_model(oracle/generator, path) saves either model")

    def weights_key(self, dtype: torch.dtype = torch.float32) -> Any:
        """Changes whenever either model's weights do, or the reference is swapped."""
        return (id(self.reference), parameter_versions(self.numerator), parameter_versions(self.reference))

    def log_ratio(self, tokens: torch.Tensor, shared: int = 0) -> torch.Tensor:
        """``log p_numerator(x) - log p_reference(x)`` per row, ``(B,)`` float32 (D's logit),
        differentiable in the numerator's weights where gradients are enabled. ``shared``: see
        :func:`sequence_log_likelihood` (consecutive rows that share their first tokens).

        Summed in float32: a sequence's log-likelihood adds ``seq_len`` log-probabilities, and
        bfloat16's 8-bit mantissa would move it by nats."""
        if tokens.shape[-1] != self.seq_len:
            raise ValueError(f"{type(self).__name__} scores whole sequences of {self.seq_len} tokens, "
                             f"got {tokens.shape[-1]}")
        k = self.prompt_length
        with torch.no_grad():
            reference = sequence_log_likelihood(self.reference, tokens, self.batch_size, k, shared).to(self.device)
        return sequence_log_likelihood(self.numerator, tokens.to(self.device), self.batch_size, k, shared) - reference

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Two-class logits ``(B, 2)`` as the CNN gives them: ``[0, log ratio]`` (column 1 = real)."""
        ratio = self.log_ratio(tokens)
        return torch.stack([torch.zeros_like(ratio), ratio], dim=1)

    def l2_penalty(self) -> torch.Tensor:
        """0: no output layer to penalise (the CNN's L2 term does not apply)."""
        return torch.zeros((), device=self.device)

    # -- the Monte Carlo engine's pooled-feature path ---------------------------------------
    def _no_prefix_feature(self, rows: int) -> torch.Tensor:
        return torch.full((rows, 1), float("-inf"), device=self.device)

    def prefix_maxima(self, tokens: torch.Tensor, lengths: torch.Tensor,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``-inf`` per row: a prefix contributes nothing until the sequence is complete."""
        return self._no_prefix_feature(tokens.shape[0])

    def last_window_maxima(self, tokens: torch.Tensor, length: int,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``-inf`` per row (see :meth:`prefix_maxima`)."""
        return self._no_prefix_feature(tokens.shape[0])

    @torch.inference_mode()
    def window_maxima(self, tokens: torch.Tensor, first_end: int = 0,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The log ratio of each whole sequence as a one-feature row, ``(R, 1)``. The engine's rows
        are the completions of its prefixes, grouped: their first ``first_end`` tokens (the shortest
        prefix) are scored once per group."""
        return self.log_ratio(tokens, shared=first_end).unsqueeze(1)

    def head(self, raw_maxima: torch.Tensor, dtype: torch.dtype = torch.float32, logit: bool = False) -> torch.Tensor:
        """P(real) ``(R,)`` from :meth:`window_maxima`'s feature (``logit=True``: the log ratio itself)."""
        ratio = raw_maxima[:, 0].float()
        return ratio if logit else torch.sigmoid(ratio)

    @torch.inference_mode()
    def score(self, tokens: torch.Tensor, dtype: torch.dtype = torch.float32,
              batch_size: int = 4096, logit: bool = False) -> torch.Tensor:
        """P(real) of whole sequences, ``(R,)`` (``logit=True``: the log ratio)."""
        ratio = self.log_ratio(tokens)
        return ratio if logit else torch.sigmoid(ratio)


class OptimalDiscriminator(DensityRatioDiscriminator):
    """The Bayes-optimal discriminator D*(x) = p_oracle(x) / (p_oracle(x) + p_reference(x)).

    Args:
        oracle: the :class:`~seqgan_env.models.Oracle` whose samples are the real data.
        reference: the generator D* tells real data apart from; in an adversarial loop pass
            the policy being trained (D* then follows it) or swap it with :meth:`set_reference`.
        batch_size: rows scored together.
        prompt_length: ``k`` of prompted episodes (see :class:`DensityRatioDiscriminator`).

    Raises:
        ValueError: no oracle (real text has no known density: D* does not exist there), or a
            reference generator of another vocabulary, length or end token.
        TypeError: an oracle or reference that is not a seqgan_env token model.
    """

    _numerator_name = "oracle"

    def __init__(self, oracle: Oracle | None, reference: TokenLSTM, batch_size: int = 1024,
                 prompt_length: int = 0) -> None:
        if oracle is None:
            raise ValueError("the Bayes-optimal discriminator needs the oracle's density: pass oracle=... "
                             "(an Oracle; it exists only for synthetic data, not for real text)")
        if not isinstance(oracle, Oracle):
            raise TypeError(f"oracle must be a seqgan_env Oracle, got {type(oracle).__name__}")
        super().__init__(oracle, reference, batch_size, prompt_length)

    @property
    def oracle(self) -> Oracle:
        return self.numerator  # type: ignore[return-value]


DENSITY_RATIO_KIND = "density-ratio-discriminator"
"""The checkpoint kind of a saved learned density-ratio D: its numerator's constructor arguments and
weights, as a generator's file holds them. The reference is not saved: it is the generator D is
used against, passed when loading."""


def save_density_ratio(discriminator: DensityRatioDiscriminator, path: str | Path) -> Path:
    """Save a density-ratio D's numerator (weights only, atomically) as a :data:`DENSITY_RATIO_KIND` file."""
    if isinstance(discriminator, OptimalDiscriminator):
        raise TypeError("D* is computed from the oracle and needs no file: evaluate it as 'optimal'")
    return atomic_save(model_payload(discriminator.numerator, DENSITY_RATIO_KIND), path)


def load_density_ratio(source: str | Path | dict[str, Any], reference: TokenLSTM) -> DensityRatioDiscriminator:
    """A :func:`save_density_ratio` file (or its loaded payload) as a D against ``reference``.

    Raises:
        CheckpointError: not such a file.
        ValueError: a reference of another vocabulary, length or end token than the numerator's.
    """
    payload = source if isinstance(source, dict) else load_checkpoint(source, DENSITY_RATIO_KIND)
    if payload.get("kind") != DENSITY_RATIO_KIND:
        raise CheckpointError(f"holds a {payload.get('kind')!r}, expected a {DENSITY_RATIO_KIND!r}")
    numerator = model_from_payload({**payload, "kind": "generator"}, str(source) if not isinstance(source, dict)
                                   else DENSITY_RATIO_KIND)
    return DensityRatioDiscriminator(numerator.to(reference.device), reference)
