"""LSTM token models: what the generator and the oracle (:mod:`seqgan_env.models.oracle`) share, and the generator.

Both use the cell of the original SeqGAN code, which is a standard LSTM without peepholes::

    i = sigmoid(x W_i + h U_i + b_i)     f = sigmoid(x W_f + h U_f + b_f)
    o = sigmoid(x W_o + h U_o + b_o)     g = tanh(x W_c + h U_c + b_c)
    c = f * c_prev + i * g               h = o * tanh(c)
    logits = h W_out + b_out

so torch's fused LSTM kernels compute it exactly (gate order i, f, g, o). The start token is
fed as the first input and is not part of the emitted sequence.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from seqgan_env.allocator import tune_allocator
from seqgan_env.devices import generator_on
from seqgan_env.sampling import CPU_CHUNK_ROWS, sample_linear

LSTMState = tuple[torch.Tensor, torch.Tensor]
"""``(h, c)``, each ``(batch, hidden)``: batch first, so rows can be indexed and repeated."""


class LSTMCellMixin:
    """One token at a time through a module's ``embedding`` and one-layer ``lstm`` (of
    ``hidden_dim`` units): the step shared by the generator and the prefix discriminator."""

    embedding: nn.Embedding
    lstm: nn.LSTM
    hidden_dim: int
    device: torch.device

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zero ``(h, c)``, each ``(batch, hidden)``: the state before the first token."""
        zeros = torch.zeros(batch_size, self.hidden_dim, device=self.device)
        return zeros, zeros.clone()

    def _cell(self, tokens: torch.Tensor, state: LSTMState) -> LSTMState:
        """The state after reading one more token per row."""
        return torch.lstm_cell(self.embedding(tokens), state, self.lstm.weight_ih_l0, self.lstm.weight_hh_l0,
                               self.lstm.bias_ih_l0, self.lstm.bias_hh_l0)


class TokenLSTM(LSTMCellMixin, nn.Module):
    """An LSTM language model over token ids that can act as a step-by-step policy.

    Args:
        vocab_size: number of token ids.
        embedding_dim: token embedding size.
        hidden_dim: LSTM hidden size.
        seq_len: length of the sequences it samples.
        start_token: id fed as the first input.
        init_std: standard deviation of the N(0, std) initialisation of every parameter.
        eos_token: end-of-sequence id (text data): :meth:`sample` writes PAD (``vocab_size``)
            after it. ``None`` (synthetic data): every sequence has ``seq_len`` tokens.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_dim: int,
        seq_len: int,
        start_token: int = 0,
        init_std: float = 0.1,
        eos_token: int | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= start_token < vocab_size:
            raise ValueError(f"start_token {start_token} is outside [0, {vocab_size})")
        if eos_token is not None and not 0 <= eos_token < vocab_size:
            raise ValueError(f"eos_token {eos_token} is outside [0, {vocab_size})")
        self.eos_token = eos_token
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.seq_len = seq_len
        self.start_token = start_token
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.output = nn.Linear(hidden_dim, vocab_size)
        with torch.no_grad():
            for param in self.parameters():
                param.normal_(0.0, init_std)
            # The original cell has one bias per gate; torch has two that add up.
            self.lstm.bias_hh_l0.zero_()
        self._augmented: tuple | None = None

    # -- construction and serialisation -------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """Constructor arguments, for checkpoints."""
        return {
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "seq_len": self.seq_len,
            "start_token": self.start_token,
            "eos_token": self.eos_token,
        }

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    # -- the step interface (a rollout policy) -------------------------------------------
    def step(self, tokens: torch.Tensor, state: LSTMState,
             logits_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Feed one token per row; return the next-token logits and the new state.

        ``logits_dtype=torch.bfloat16`` (inference only) computes the output layer on
        bfloat16 matrix units; the Monte Carlo reward uses it for its rollout policy.
        """
        if torch.is_grad_enabled():
            h, c = self._cell(tokens, state)
            return self.output(h), (h, c)
        features, (h, c) = self.step_features(tokens, state, logits_dtype)
        return torch.mm(features, self.output_weight(features.dtype)), (h, c)

    def step_features(self, tokens: torch.Tensor, state: LSTMState,
                      dtype: torch.dtype | None = None) -> tuple[torch.Tensor, LSTMState]:
        """Inference step that stops before the output layer: ``(features, (h, c))``, where
        ``features @ output_weight(dtype)`` are the next-token logits. The Monte Carlo reward
        samples from them without materialising every row's logits at once. ``dtype``:
        that of the output layer's product (default: the model's)."""
        h, c = self._cell(tokens, state)
        return self.output_features(h, dtype or h.dtype), (h, c)

    @staticmethod
    def output_features(hidden: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[hidden, 1]`` in ``dtype``: the output layer is one product with the bias folded in
        as an extra row, which skips the separate pass that broadcasting the bias costs."""
        ones = torch.ones(hidden.shape[0], 1, dtype=hidden.dtype, device=hidden.device)
        return torch.cat([hidden, ones], dim=1).to(dtype)

    def output_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The output layer's weight with its bias as the last row, ``(hidden + 1, vocab)``, cached."""
        weight, bias = self.output.weight, self.output.bias
        key = (id(weight), weight._version, id(bias), bias._version, weight.device, dtype)
        if self._augmented is None or self._augmented[0] != key:
            with torch.no_grad():
                merged = torch.cat([weight.T, bias.unsqueeze(0)]).contiguous().to(dtype)
                self._augmented = (key, merged)
        return self._augmented[1]

    def start(self, batch_size: int) -> tuple[torch.Tensor, LSTMState]:
        """Logits of the first token and the state after the start token."""
        tokens = torch.full((batch_size,), self.start_token, dtype=torch.long, device=self.device)
        return self.step(tokens, self.initial_state(batch_size))

    # -- whole sequences -----------------------------------------------------------------
    def hidden_states(self, sequences: torch.Tensor) -> torch.Tensor:
        """Teacher-forced hidden states ``(B, T, hidden)``: row ``t`` predicts token ``t``.

        Ids outside the vocabulary (padding after an end token) are read as the last id;
        they only ever feed positions that callers mask out.
        """
        start = torch.full_like(sequences[:, :1], self.start_token)
        inputs = torch.cat([start, sequences[:, :-1]], dim=1).clamp(max=self.vocab_size - 1)
        hidden, _ = self.lstm(self.embedding(inputs))
        return hidden

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-token logits: ``(B, T)`` tokens -> ``(B, T, vocab)``.

        Position ``t`` holds the logits of ``sequences[:, t]`` given the tokens before it.
        """
        return self.output(self.hidden_states(sequences))

    def log_probs(self, sequences: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Log-probability of every token of ``sequences`` (``(B, T)`` -> ``(B, T)``), under
        the distribution that :meth:`sample` draws from at ``temperature``. Without gradients
        the output layer goes a chunk of rows at a time (:meth:`taken_log_probs`)."""
        if not torch.is_grad_enabled() or not self.output.weight.requires_grad:
            hidden = self.hidden_states(sequences)
            return self.taken_log_probs(hidden.reshape(-1, self.hidden_dim), sequences.reshape(-1),
                                        temperature).view(sequences.shape)
        logits = self(sequences)
        if temperature != 1.0:
            logits = logits / temperature
        # torch's fused log-softmax: one kernel where logsumexp takes five passes.
        return torch.log_softmax(logits, dim=-1).gather(
            -1, sequences.clamp(max=self.vocab_size - 1).unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def taken_log_probs(self, hidden: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0,
                        chunk_rows: int = CPU_CHUNK_ROWS) -> torch.Tensor:
        """``log p(token | hidden state)`` per row, for ``(R, hidden)`` LSTM outputs and ``(R,)``
        tokens, float32, no gradients (ids past the vocabulary, PAD, are read as the last id).

        Each chunk's ``(chunk_rows, vocab)`` log-probabilities are made, reduced to the taken
        token's and dropped while still in cache: a log-softmax over every row at once writes and
        rereads ``R x vocab`` floats, which is most of a teacher-forced pass's cost on a CPU
        (a 5,000-token vocabulary: about 4x; ``benchmarks/bench_density_ratio.py``)."""
        weight = self.output_weight(torch.float32)
        if temperature != 1.0:
            weight = weight / temperature
        features = self.output_features(hidden.float(), torch.float32)
        taken = tokens.clamp(max=self.vocab_size - 1).unsqueeze(1)
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        step = chunk_rows if hidden.device.type == "cpu" else max(hidden.shape[0], 1)
        for begin in range(0, hidden.shape[0], step):
            # torch's fused log-softmax of an in-cache chunk: quicker than its logsumexp (several passes).
            log_probs = torch.log_softmax(torch.mm(features[begin : begin + step], weight), dim=1)
            out[begin : begin + step] = log_probs.gather(1, taken[begin : begin + step]).squeeze(1)
        return out

    @torch.inference_mode()
    def nll(self, sequences: torch.Tensor, batch_size: int = 64, lengths: torch.Tensor | None = None,
            temperature: float = 1.0) -> float:
        """Mean per-token negative log-likelihood of ``sequences``.

        PAD positions (ids ``>= vocab_size``, after an end token) are not counted; ``lengths``
        (optional, ``(B,)``) counts only the first ``lengths[i]`` tokens of row i.
        """
        total, count = 0.0, 0
        for start in range(0, sequences.shape[0], batch_size):
            chunk = sequences[start : start + batch_size].to(self.device)
            logp = self.log_probs(chunk, temperature)
            if lengths is not None:
                mask = torch.arange(chunk.shape[1], device=self.device) < lengths[
                    start : start + batch_size
                ].to(self.device).unsqueeze(1)
                total -= float(logp[mask].sum())
                count += int(mask.sum())
            elif int(chunk.max()) >= self.vocab_size:
                mask = chunk < self.vocab_size
                total -= float(logp[mask].sum())
                count += int(mask.sum())
            else:
                total -= float(logp.sum())
                count += logp.numel()
        return total / max(count, 1)

    def sample(
        self,
        num: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        batch_size: int = 1024,
    ) -> torch.Tensor:
        """Sample ``num`` sequences of ``seq_len`` tokens: ``(num, seq_len)`` int64.

        With an ``eos_token``, positions after a row's end token hold PAD (``vocab_size``).
        Rows are drawn ``batch_size`` at a time: larger blocks of logits fall out of the
        allocator's reuse and cost page faults on every step. A ``generator`` on another
        device than the model (a CPU one for a model on a GPU) seeds a generator on the
        model's device with one draw, so the samples still follow from it.
        """
        tune_allocator()
        generator = generator_on(generator, self.device)
        with torch.inference_mode():
            weight = self.output_weight(self.output.weight.dtype)
            out = torch.empty(num, self.seq_len, dtype=torch.long, device=self.device)
            for begin in range(0, num, batch_size):
                rows = min(batch_size, num - begin)
                start = torch.full((rows,), self.start_token, dtype=torch.long, device=self.device)
                features, state = self.step_features(start, self.initial_state(rows))
                ended = torch.zeros(rows, dtype=torch.bool, device=self.device)
                for t in range(self.seq_len):
                    token = sample_linear(features, weight, generator, temperature)
                    if self.eos_token is not None:
                        token = token.masked_fill(ended, self.vocab_size)
                        ended |= token == self.eos_token
                    out[begin : begin + rows, t] = token
                    if t + 1 == self.seq_len:
                        break
                    if self.eos_token is not None:
                        if bool(ended.all()):
                            out[begin : begin + rows, t + 1 :] = self.vocab_size
                            break
                        token = token.clamp(max=self.vocab_size - 1)  # ended rows feed a dummy id
                    features, state = self.step_features(token, state)
        return out.clone()  # a normal tensor, usable as training data under autograd


class Generator(TokenLSTM):
    """The SeqGAN generator G: an LSTM policy over next tokens, N(0, 0.1) initialised."""

    @classmethod
    def from_preset(cls, preset: Any) -> Generator:
        return cls(
            preset.vocab_size, preset.gen_embedding_dim, preset.gen_hidden_dim,
            preset.seq_len, preset.start_token, init_std=0.1, eos_token=getattr(preset, "eos_token", None),
        )
