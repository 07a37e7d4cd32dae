"""The comparison's prompt axis (``seqgan compare --prompt-length k``): each run's env arguments,
and the evaluation measures that prompted episodes need.

With ``prompt_length = k > 0`` every run trains on prompted episodes (the oracle's first ``k``
tokens, then the agent's ``seq_len - k``). The sequence-level algorithms (RLOO, GRPO) get prompt
groups of their own ``group_size``, so that each of their groups compares completions of one
prompt; the others draw a prompt per row. With ``k > 0`` every evaluation adds
``nll_oracle_prompted``, NLL-oracle of the completions given the prompts (the gold of prompted
episodes), and ``kl_prompted`` with ``kl_prompted_stderr``, the KL to the base generator the run
started from on completions of the same prompts, both on one fixed set of prompts for every run
(the evaluation's ``kl`` is the KL of whole unprompted sequences).
"""

from __future__ import annotations

from typing import Any

import torch

from seqgan_env.divergence import kl_to_reference
from seqgan_env.metrics import nll_oracle_given_prompt
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


def prompted_metrics(generator: Generator, reference: Generator, oracle: Oracle, prompt_length: int,
                     samples: int, seed: int) -> dict[str, float]:
    """``nll_oracle_prompted`` and ``kl_prompted`` (± ``kl_prompted_stderr``) of ``generator`` on
    ``samples`` completions, drawn with ``seed``, of fixed oracle prompts; nothing when
    ``prompt_length`` is 0."""
    if not prompt_length:
        return {}
    rng = torch.Generator().manual_seed(seed)
    empty = torch.zeros((samples, 0), dtype=torch.long)
    prompts = complete(oracle, empty, torch.Generator().manual_seed(PROMPT_SEED), length=prompt_length)
    completions = complete(generator, prompts, rng)
    kl = kl_to_reference(generator, reference, samples=completions, prompt_length=prompt_length)
    return {"kl_prompted": kl.kl, "kl_prompted_stderr": kl.kl_stderr,
            "nll_oracle_prompted": nll_oracle_given_prompt(oracle, completions, prompt_length)}


__all__ = ["GROUPED_ALGORITHMS", "PROMPT_SEED", "prompt_env_kwargs", "prompted_metrics"]
