"""Sample metrics: NLL-oracle of completions given their prompts; BLEU against a reference set and self-BLEU.

:func:`nll_oracle_given_prompt` is the gold of prompted episodes (``prompt_length=k``): the
oracle's mean negative log-likelihood per token of what was written after each prompt,
``-1/n sum_{t >= k} log p_oracle(y_t | y_<t)`` over the ``n`` completion tokens of all rows.
With ``k = 0`` it is the paper's NLL-oracle.

Text-GAN papers (SeqGAN, Yu et al. 2017; the Texygen benchmark, Zhu et al. 2018) score each
generated sentence with sentence-level BLEU against the *whole* held-out set as its
references, and average over sentences; self-BLEU scores each generated sentence against the
other generated sentences (high self-BLEU = low diversity). Both follow NLTK's
``sentence_bleu`` with uniform weights and smoothing ``method1`` (a zero n-gram match count
becomes 0.1), so numbers are comparable with those benchmarks.

Computed naively, one hypothesis against 10,000 references means 10,000 n-gram counts per
hypothesis. Here a :class:`ReferenceSet` counts the references' n-grams once: for BLEU only
the largest count of each n-gram in any one reference matters (the clipping count), and the
reference lengths for the brevity penalty. For self-BLEU it also keeps the second-largest
count, so that a sentence can be taken out of its own reference set exactly.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import torch

from seqgan_env.divergence import sequence_log_probs
from seqgan_env.models.lstm import TokenLSTM

Sentence = Sequence[Hashable]
"""A tokenised sentence: a sequence of words, characters or token ids."""

SMOOTHING_EPSILON = 0.1
"""NLTK's ``SmoothingFunction().method1``: a zero match count is replaced by this."""


def nll_oracle_given_prompt(oracle: TokenLSTM, sequences: torch.Tensor, prompt_length: int) -> float:
    """Mean per-token ``-log p_oracle`` of the tokens at positions ``>= prompt_length`` of
    ``(B, L)`` sequences (each a prompt and its completion; PAD after an end token counts nothing)."""
    if sequences.dim() != 2 or not 0 <= prompt_length < sequences.shape[1]:
        raise ValueError(f"expected (batch, length) sequences longer than prompt_length={prompt_length}, "
                         f"got shape {tuple(sequences.shape)}")
    totals, counts = sequence_log_probs(oracle, sequences, first=prompt_length)
    return float(-totals.sum() / counts.sum().clamp(min=1.0))


def ngrams(sentence: Sentence, n: int) -> Counter:
    """Counts of the ``n``-grams of one sentence."""
    return Counter(tuple(sentence[i : i + n]) for i in range(len(sentence) - n + 1))


class ReferenceSet:
    """Reference sentences with their n-gram clipping counts precomputed (orders 1..``max_order``)."""

    def __init__(self, references: Iterable[Sentence], max_order: int = 5) -> None:
        self.references = [tuple(r) for r in references]
        if not self.references:
            raise ValueError("BLEU needs at least one reference sentence")
        self.max_order = max_order
        # For every n-gram: (largest count in one reference, how many references reach it,
        # second-largest count) -- the last two let a reference be left out (self-BLEU).
        self.clip: list[dict[tuple, list[int]]] = [{} for _ in range(max_order + 1)]
        for ref in self.references:
            for n in range(1, max_order + 1):
                table = self.clip[n]
                for gram, count in ngrams(ref, n).items():
                    entry = table.get(gram)
                    if entry is None:
                        table[gram] = [count, 1, 0]
                    elif count > entry[0]:
                        entry[:] = [count, 1, entry[0]]
                    elif count == entry[0]:
                        entry[1] += 1
                    elif count > entry[2]:
                        entry[2] = count
        self.length_counts = Counter(len(r) for r in self.references)
        self.lengths = sorted(self.length_counts)

    def _clip_count(self, gram: tuple, n: int, leave_out: Counter | None) -> int:
        entry = self.clip[n].get(gram)
        if entry is None:
            return 0
        if leave_out is not None and entry[1] == 1 and leave_out.get(gram, 0) == entry[0]:
            return entry[2]  # the left-out sentence alone held the maximum
        return entry[0]

    def _closest_length(self, hyp_len: int, leave_out_len: int | None) -> int:
        """Reference length closest to ``hyp_len`` (the shorter one on a tie), as NLTK picks it."""
        lengths = self.lengths
        if leave_out_len is not None and self.length_counts[leave_out_len] == 1:
            lengths = [length for length in lengths if length != leave_out_len]
        if not lengths:
            raise ValueError("self-BLEU needs at least two sentences")
        i = bisect.bisect_left(lengths, hyp_len)
        candidates = lengths[max(i - 1, 0) : i + 1]
        return min(candidates, key=lambda length: (abs(length - hyp_len), length))

    def bleu(self, hypothesis: Sentence, order: int, leave_out: bool = False) -> float:
        """Sentence BLEU-``order`` of one hypothesis (uniform weights, smoothing method1).

        ``leave_out=True`` scores a sentence that is itself one of the references against
        all the others (self-BLEU).
        """
        if not 1 <= order <= self.max_order:
            raise ValueError(f"BLEU order must be in [1, {self.max_order}], got {order}")
        hyp = tuple(hypothesis)
        if not hyp:
            return 0.0
        log_sum = 0.0
        for n in range(1, order + 1):
            counts = ngrams(hyp, n)
            own = counts if leave_out else None
            matched = sum(min(c, self._clip_count(g, n, own)) for g, c in counts.items())
            total = max(1, sum(counts.values()))
            if n == 1 and matched == 0:
                return 0.0  # NLTK returns 0 when not even a unigram matches
            precision = matched / total if matched else SMOOTHING_EPSILON / total
            log_sum += math.log(precision) / order
        ref_len = self._closest_length(len(hyp), len(hyp) if leave_out else None)
        brevity = 1.0 if len(hyp) > ref_len else math.exp(1 - ref_len / len(hyp))
        return brevity * math.exp(log_sum)


def bleu(hypotheses: Sequence[Sentence], references: Sequence[Sentence] | ReferenceSet,
         orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """Mean sentence BLEU-n of ``hypotheses``, each against the whole reference set."""
    refs = references if isinstance(references, ReferenceSet) else ReferenceSet(references, max(orders))
    if not hypotheses:
        raise ValueError("BLEU needs at least one hypothesis")
    return {n: sum(refs.bleu(h, n) for h in hypotheses) / len(hypotheses) for n in orders}


def self_bleu(sentences: Sequence[Sentence], orders: Sequence[int] = (2, 3, 4, 5)) -> dict[int, float]:
    """Mean BLEU-n of each sentence against all the others (diversity: lower is more diverse)."""
    if len(sentences) < 2:
        raise ValueError("self-BLEU needs at least two sentences")
    refs = ReferenceSet(sentences, max(orders))
    return {n: sum(refs.bleu(s, n, leave_out=True) for s in refs.references) / len(sentences) for n in orders}
