"""How far a policy has moved from its reference: KL(pi || pi_ref) per sequence, and entropy.

A learned reward is a proxy that a policy over-optimises; the field measures the gold score
against the KL divergence from the policy the run started from (Gao, Schulman and Hilton,
ICML 2023). For autoregressive models the sequence-level KL is a sum over tokens, so it is
estimated on fresh samples ``y ~ pi`` as::

    KL(pi || pi_ref) = E_pi[ sum_t log pi(y_t | y_<t) - log pi_ref(y_t | y_<t) ]

with the standard error of the mean over sequences. Entropy per token is the mean of
``-log pi(y_t | y_<t)`` over the same tokens (what :func:`train.adversarial.evaluate`
reports as ``entropy``), so both come from one teacher-forced pass of pi over the samples
plus one of pi_ref, and an evaluation that already samples pi passes its samples in
(``samples=``) instead of drawing new ones.

``temperature`` makes pi the policy sampled at that temperature: the tempered MLE
generator's KL to the untempered one is ``kl_to_reference(g, g, temperature=t)``.

For prompted episodes (``prompt_length=k``) the KL is that of the completions given the same
prompts, ``E_prompt E_pi[ sum_{t >= k} log pi(y_t | y_<t) - log pi_ref(y_t | y_<t) ]``: pi
completes the given prompts (or the prompts inside ``samples``), and only positions ``>= k``
count, in the KL and in the entropy.

:func:`all_sequences` enumerates a tiny model's whole sequence space, for exact checks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.prompts import complete

ENUMERATION_LIMIT = 1_000_000
"""Most sequences :func:`all_sequences` writes out."""


@dataclass(frozen=True)
class KLEstimate:
    """KL(pi || pi_ref) per sequence, estimated on samples of pi, and pi's entropy per token."""

    kl: float
    """Mean over sampled sequences of ``log pi(y) - log pi_ref(y)`` (nats per sequence)."""
    kl_stderr: float
    """Standard error of :attr:`kl` (standard deviation over sequences / sqrt(samples))."""
    entropy: float
    """Mean ``-log pi(y_t | y_<t)`` over the sampled tokens (nats per token)."""
    samples: int
    """Sequences the estimate is over."""

    def as_dict(self) -> dict[str, float]:
        """Plain floats for metrics.csv, TensorBoard and each run's JSON."""
        return {key: float(value) for key, value in asdict(self).items()}


def sequence_log_probs(model: TokenLSTM, sequences: torch.Tensor, temperature: float = 1.0,
                       batch_size: int = 64, first: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(y), tokens)``, each ``(B,)`` float64: the log-probability of each whole sequence
    under ``model`` at ``temperature`` and how many tokens it has (PAD after an end token
    is not a token). One teacher-forced pass, ``batch_size`` rows at a time (64, as
    :meth:`~seqgan_env.models.TokenLSTM.nll` reads them: on 2,000 samples of the default
    preset 1.8x faster than blocks of 1,024 rows, whose 5,000-way logits leave the cache).
    ``first``: only positions from ``first`` on count (a completion given its prompt)."""
    totals, counts = [], []
    with torch.inference_mode():
        for begin in range(0, sequences.shape[0], batch_size):
            chunk = sequences[begin : begin + batch_size].to(model.device)
            valid = (chunk < model.vocab_size) & (torch.arange(chunk.shape[1], device=chunk.device) >= first)
            log_probs = model.log_probs(chunk, temperature).double()
            totals.append(torch.where(valid, log_probs, 0.0).sum(dim=1))
            counts.append(valid.sum(dim=1).double())
    if not totals:
        empty = torch.zeros(0, dtype=torch.float64, device=model.device)
        return empty, empty.clone()
    return torch.cat(totals), torch.cat(counts)


def kl_to_reference(policy: TokenLSTM, reference: TokenLSTM, num_samples: int = 2000,
                    rng: torch.Generator | None = None, temperature: float = 1.0,
                    samples: torch.Tensor | None = None, batch_size: int = 64, prompt_length: int = 0,
                    prompts: torch.Tensor | None = None) -> KLEstimate:
    """Estimate KL(pi || pi_ref) per sequence and pi's entropy per token on samples of pi.

    Args:
        policy: pi, the model being measured (at ``temperature``).
        reference: pi_ref, usually the MLE generator the run started from (at temperature 1).
        num_samples: sequences to draw when ``samples`` is not given.
        rng: random generator of the draws.
        temperature: pi samples and scores at this temperature.
        samples: sequences already drawn from pi at ``temperature`` (an evaluation's), reused.
        batch_size: rows per teacher-forced pass.
        prompt_length: ``k`` of prompted episodes: the KL of the completions (positions ``>= k``)
            given the prompts; ``0`` (default): of whole sequences.
        prompts: ``(N, k)`` prompts that pi completes when ``samples`` is not given (one
            completion each; e.g. the oracle's, :class:`seqgan_env.prompts.OraclePrompts`).
    """
    if policy.vocab_size != reference.vocab_size or policy.seq_len != reference.seq_len:
        raise ValueError(f"the policy (vocabulary {policy.vocab_size}, length {policy.seq_len}) and the reference "
                         f"(vocabulary {reference.vocab_size}, length {reference.seq_len}) differ in shape")
    if not 0 <= prompt_length < policy.seq_len:
        raise ValueError(f"prompt_length must be in [0, {policy.seq_len}), got {prompt_length}")
    if samples is None and prompt_length:
        if prompts is None or prompts.dim() != 2 or prompts.shape[1] != prompt_length:
            raise ValueError(f"prompt_length={prompt_length} without samples needs prompts=... of shape "
                             f"(N, {prompt_length}) for pi to complete")
        samples = complete(policy, prompts, rng, temperature)
    if samples is None:
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2 for a standard error, got {num_samples}")
        samples = policy.sample(num_samples, rng, temperature=temperature)
    elif samples.shape[0] < 2:
        raise ValueError(f"a KL estimate needs at least 2 samples, got {samples.shape[0]}")
    own, tokens = sequence_log_probs(policy, samples, temperature, batch_size, prompt_length)
    theirs, _ = sequence_log_probs(reference, samples.to(reference.device), 1.0, batch_size, prompt_length)
    per_sequence = own - theirs.to(own.device)
    count = per_sequence.shape[0]
    return KLEstimate(
        kl=float(per_sequence.mean()),
        kl_stderr=float(per_sequence.std(unbiased=True)) / math.sqrt(count),
        entropy=float(-own.sum() / tokens.sum().clamp(min=1.0)),
        samples=count,
    )


def all_sequences(vocab_size: int, seq_len: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Every sequence of ``seq_len`` tokens over ``vocab_size`` ids, ``(V ** L, L)``, in
    lexicographic order: a tiny model's whole sample space, for exact expectations."""
    count = vocab_size**seq_len
    if count > ENUMERATION_LIMIT:
        raise ValueError(f"{vocab_size}**{seq_len} = {count} sequences is too many to enumerate "
                         f"(at most {ENUMERATION_LIMIT})")
    grids = torch.meshgrid(*[torch.arange(vocab_size, device=device)] * seq_len, indexing="ij")
    return torch.stack([grid.reshape(-1) for grid in grids], dim=1)


def exact_kl(policy: TokenLSTM, reference: TokenLSTM, temperature: float = 1.0) -> float:
    """KL(pi || pi_ref) per sequence by enumeration (tiny models without an end token only)."""
    if policy.eos_token is not None:
        raise ValueError("exact_kl enumerates fixed-length sequences; the policy has an end token")
    space = all_sequences(policy.vocab_size, policy.seq_len, policy.device)
    own, _ = sequence_log_probs(policy, space, temperature)
    theirs, _ = sequence_log_probs(reference, space.to(reference.device))
    return float((own.exp() * (own - theirs.to(own.device))).sum())


__all__ = ["KLEstimate", "all_sequences", "exact_kl", "kl_to_reference", "sequence_log_probs"]
