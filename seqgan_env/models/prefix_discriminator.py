"""A discriminator that scores every prefix of a sequence in one pass (a dense reward's D).

The paper's CNN discriminator (:class:`~seqgan_env.models.Discriminator`) judges finished
sequences only, so SeqGAN values an unfinished prefix by Monte Carlo completion: N rollouts
per step, each scored by D. ScratchGAN (de Masson d'Autume, Rosca, Rae and Mohamed, 2019,
"Training Language GANs from Scratch", NeurIPS) uses instead a recurrent discriminator that
reads the sequence left to right and emits a logit after every token: the probability that
the prefix ``y_<=t`` comes from real data. Those per-step scores are a dense reward that needs
no rollouts, and since an LSTM's state after ``t`` tokens summarises the prefix, the reward of
step ``t`` costs one LSTM step per row (:meth:`PrefixDiscriminator.step`).

Architecture (kept small: this is a reward model, not a language model): a token embedding
(with a zero PAD row), one LSTM layer and a linear head from the hidden state to one logit.
It is trained with binary cross-entropy averaged over all prefix positions, every prefix of a
real sequence labelled 1 and every prefix of a generated one 0 (PAD positions after an end
token are ignored): :func:`~seqgan_env.models.discriminator.fit_discriminator`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from seqgan_env.models.lstm import LSTMCellMixin, LSTMState
from seqgan_env.precision import parameter_versions


class PrefixDiscriminator(LSTMCellMixin, nn.Module):
    """LSTM classifier of every prefix: ``forward`` gives the logit that ``y_<=t`` is real, per ``t``.

    Args:
        vocab_size: number of token ids; id ``vocab_size`` is the padding id (its embedding is 0).
        seq_len: length of the sequences it reads.
        embedding_dim: size of the token embedding.
        hidden_dim: LSTM hidden size.
    """

    def __init__(self, vocab_size: int, seq_len: int, embedding_dim: int = 64, hidden_dim: int = 64) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("seq_len", seq_len), ("embedding_dim", embedding_dim),
                            ("hidden_dim", hidden_dim)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.pad_token = vocab_size
        self.embedding = nn.Embedding(vocab_size + 1, embedding_dim, padding_idx=self.pad_token)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, 1)

    @classmethod
    def from_preset(cls, preset: Any) -> PrefixDiscriminator:
        """Sized like the preset's CNN discriminator: embedding and hidden size = its embedding size
        (64 for ``paper``, 32 for ``default`` and ``text``, 16 for ``tiny``)."""
        width = preset.discriminator.embedding_dim
        return cls(preset.vocab_size, preset.seq_len, embedding_dim=width, hidden_dim=width)

    def config_dict(self) -> dict[str, Any]:
        """Constructor arguments, for checkpoints."""
        return {"vocab_size": self.vocab_size, "seq_len": self.seq_len, "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim}

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T)`` that each prefix ``tokens[:, :t + 1]`` is real, for ``(B, T)`` token ids."""
        hidden, _ = self.lstm(self.embedding(tokens))
        return self.head(hidden).squeeze(-1)

    def sequence_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """The logit ``(B,)`` that each whole sequence is real: the one at its last token (before any PAD)."""
        logits = self(tokens)
        last = ((tokens != self.pad_token).sum(dim=1) - 1).clamp(min=0)
        return logits.gather(1, last.unsqueeze(1)).squeeze(1)

    def prob_real(self, tokens: torch.Tensor) -> torch.Tensor:
        """P(real) ``(B,)`` of each whole sequence: the score at its last token (before any PAD),
        so code that scores finished sequences works with either discriminator."""
        return torch.sigmoid(self.sequence_logits(tokens))

    @torch.inference_mode()
    def score(self, tokens: torch.Tensor, dtype: torch.dtype = torch.float32,
              batch_size: int = 4096, logit: bool = False) -> torch.Tensor:
        """:meth:`prob_real` in inference mode, in chunks (the CNN's ``score`` signature; this
        model always computes in float32, ``dtype`` is accepted for that symmetry); ``logit=True``: its logit."""
        if not tokens.shape[0]:
            return torch.empty(0, device=tokens.device)
        read = self.sequence_logits if logit else self.prob_real
        return torch.cat([read(tokens[i : i + batch_size]) for i in range(0, tokens.shape[0], batch_size)])

    # -- the incremental path of the dense reward -----------------------------------------
    def step(self, tokens: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """Read one more token per row: the logits ``(B,)`` of the prefixes now ending at it, and
        the new state. From :meth:`initial_state` over ``t`` tokens this gives ``forward``'s
        column ``t - 1``."""
        h, c = self._cell(tokens, state)
        return self.head(h).squeeze(-1), (h, c)

    def weights_key(self) -> tuple:
        """Changes whenever a weight does (in-place optimiser steps bump the version counters)."""
        return parameter_versions(self)
