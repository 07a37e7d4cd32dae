"""The comparison's prompt axis (``seqgan compare --prompt-length k``): each run's env arguments,
and the evaluation measures that prompted episodes need.

With ``prompt_length = k > 0`` every run trains on prompted episodes (the oracle's first ``k``
tokens, then the agent's ``seq_len - k``). The sequence-level algorithms (RLOO, GRPO) get prompt
groups of their own ``group_size``, so that each of their groups compares completions of one
prompt; the others draw a prompt per row. With ``k > 0`` every evaluation adds
``nll_oracle_prompted``, NLL-oracle of the completions given the prompts,
``reverse_kl_prompted`` (KL(G || oracle) per completion token given the prompts: the gold of
prompted episodes), and ``kl_prompted`` with ``kl_prompted_stderr``, the KL to the base generator the
run started from on completions of the same prompts, all on one fixed set of prompts for every
run; and ``forward_kl_prompted``, KL(oracle || G) per completion token on held-out oracle
sequences (their first ``k`` tokens the prompt, the rest the completion G is scored on). Each
divergence has its ``_stderr``. The evaluation's ``kl``, ``reverse_kl`` and ``forward_kl`` are
those of whole unprompted sequences.
"""

from __future__ import annotations

from typing import Any

import torch

from seqgan_env.divergence import (
    ScoredSequences,
    forward_kl,
    kl_from_log_probs,
    per_token_divergence,
    score_sequences,
    sequence_log_probs,
)
from seqgan_env.models import Generator, Oracle
from seqgan_env.prompts import complete

PROMPT_SEED = 2027
"""Seed of the evaluation's prompts: the same prompts for every run and every evaluation."""
GROUPED_ALGORITHMS = ("rloo", "grpo")
"""Algorithms whose groups must share a prompt: their env gets ``group_size`` = theirs."""


def prompt_env_kwargs(prompt_length: int, algorithm: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The env arguments of one run's prompts (none when ``prompt_length`` is 0)."""
    if not prompt_length:
        return {}
    if algorithm in GROUPED_ALGORITHMS:
        from train.algorithms import get_algorithm

        group_size = hparams.get("group_size", get_algorithm(algorithm).hparams().get("group_size"))
        return {"prompt_length": prompt_length, "group_size": int(group_size)}
    return {"prompt_length": prompt_length}


def prompted_test_scores(oracle: Oracle, test: torch.Tensor, prompt_length: int,
                         samples: int) -> ScoredSequences | None:
    """The oracle's scores of the completions (positions ``>= prompt_length``) of the first ``samples``
    held-out sequences, for ``forward_kl_prompted``: computed once per run; ``None`` without prompts."""
    if not prompt_length:
        return None
    return score_sequences(oracle, test[:samples], first=prompt_length)


def prompted_metrics(generator: Generator, reference: Generator, oracle: Oracle, prompt_length: int,
                     samples: int, seed: int, test_scores: ScoredSequences | None = None) -> dict[str, float]:
    """``nll_oracle_prompted``, ``reverse_kl_prompted`` and ``kl_prompted`` (each divergence ± its
    ``_stderr``) of ``generator`` on ``samples`` completions, drawn with ``seed``, of fixed oracle
    prompts, and, given the oracle's ``test_scores`` of held-out completions
    (:func:`prompted_test_scores`), ``forward_kl_prompted``; nothing when ``prompt_length`` is 0."""
    if not prompt_length:
        return {}
    rng = torch.Generator().manual_seed(seed)
    empty = torch.zeros((samples, 0), dtype=torch.long)
    prompts = complete(oracle, empty, torch.Generator().manual_seed(PROMPT_SEED), length=prompt_length)
    completions = complete(generator, prompts, rng)
    # One teacher-forced pass of each model over the completions gives all three.
    own, tokens = sequence_log_probs(generator, completions, first=prompt_length)
    theirs, _ = sequence_log_probs(reference, completions.to(reference.device), first=prompt_length)
    gold, _ = sequence_log_probs(oracle, completions.to(oracle.device), first=prompt_length)
    kl = kl_from_log_probs(own, theirs, tokens)
    reverse = per_token_divergence(own, gold, tokens)
    out = {"kl_prompted": kl.kl, "kl_prompted_stderr": kl.kl_stderr,
           "nll_oracle_prompted": float(-gold.sum() / tokens.sum().clamp(min=1.0)),
           "reverse_kl_prompted": reverse.value, "reverse_kl_prompted_stderr": reverse.stderr}
    if test_scores is not None:
        forward = forward_kl(generator, oracle, test_scores, prompt_length)
        out.update(forward_kl_prompted=forward.value, forward_kl_prompted_stderr=forward.stderr)
    return out


__all__ = ["GROUPED_ALGORITHMS", "PROMPT_SEED", "prompt_env_kwargs", "prompted_metrics", "prompted_test_scores"]
