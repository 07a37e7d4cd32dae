"""The SeqGAN discriminator: a text CNN with a highway layer that outputs P(real).

As in the paper (Yu et al., 2017, after Kim 2014 and Srivastava et al. 2015): token
embedding, one convolution per window size with ReLU and max-pooling over time, the pooled
features concatenated, one highway layer, dropout (keep 0.75 in training), and a two-class
output layer with an L2 penalty of 0.2 on its weights and bias.

Besides the ordinary ``forward`` used for training, the model offers a decomposed inference
path used by the Monte Carlo reward. Max-pooling over time splits over any partition of the
windows, so for N completions of one prefix the windows lying wholly inside the prefix are
pooled once per prefix (:meth:`prefix_maxima`), and only the windows that reach into the
completion are computed per completion (:meth:`window_maxima`). Bias and ReLU commute with
the max (both are monotone), so they are applied after pooling.

While D is fixed the convolutions are table look-ups: a filter's response to a window is the
sum over the window's positions of (the embedding of the token there) . (that position's
slice of the filter), so every token's projection onto every slice is computed once per
weight version (``V x sum_k k * n_k`` values: 12,500 per token for the paper's D) and a
window costs k gathered rows, summed by one ``embedding_bag`` call per filter size, instead
of ``k x dim x n_k`` multiply-adds. Where that table would be too large
(:data:`TABLE_MAX_BYTES`) each convolution runs as one matrix product over unfolded windows.
The float32 compute type keeps the table in float32; bfloat16 stores it in float16 and runs
the highway's product (and the fallback's) in bfloat16.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from seqgan_env.models.prefix_discriminator import PrefixDiscriminator
from seqgan_env.precision import parameter_versions, training_autocast
from seqgan_env.presets import DiscriminatorConfig

HIGHWAY_GATE_BIAS = -2.0
"""Initial bias of the highway gate: starts the layer close to the identity (carry)."""

TABLE_MAX_BYTES = 768 * 2**20
"""Largest convolution look-up table built (the paper's D over 5,000 tokens: 250 MB in float32,
125 MB in float16); beyond it the convolutions run as matrix products."""

FLOAT16_SAFE_SUM = 2.0**14
"""A float16 table is used only while k times its largest entry stays below this (float16's
largest value is 65,504); otherwise the table stays in float32."""


class Discriminator(nn.Module):
    """CNN classifier of token sequences: real (1) versus generated (0).

    Args:
        vocab_size: number of token ids; id ``vocab_size`` is the padding id.
        seq_len: length of the sequences it reads (shorter ones are padded).
        config: widths of the embedding and filters, dropout and L2 settings.
    """

    def __init__(self, vocab_size: int, seq_len: int, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        config = config or DiscriminatorConfig()
        too_long = [k for k in config.filter_sizes if k > seq_len]
        if too_long:
            raise ValueError(f"filter sizes {too_long} are longer than the sequence length {seq_len}")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.config = config
        self.pad_token = vocab_size
        dim = config.embedding_dim
        features = config.feature_dim
        self.embedding = nn.Embedding(vocab_size + 1, dim, padding_idx=self.pad_token)
        self.convs = nn.ModuleList(
            nn.Conv1d(dim, count, size) for size, count in zip(config.filter_sizes, config.num_filters)
        )
        self.highway_transform = nn.Linear(features, features)
        self.highway_gate = nn.Linear(features, features)
        self.dropout = nn.Dropout(1.0 - config.dropout_keep)
        self.output = nn.Linear(features, 2)
        with torch.no_grad():  # the original code's initialisation
            nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
            self.embedding.weight[self.pad_token].zero_()
            for conv in self.convs:
                nn.init.trunc_normal_(conv.weight, std=0.1, a=-0.2, b=0.2)
                conv.bias.fill_(0.1)
            self.highway_gate.bias.fill_(HIGHWAY_GATE_BIAS)
            nn.init.trunc_normal_(self.output.weight, std=0.1, a=-0.2, b=0.2)
            self.output.bias.fill_(0.1)
        self._fast_cache: dict[torch.dtype, tuple[Any, dict[str, Any]]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The inference caches (up to hundreds of MB) are rebuilt on demand, never copied.
        state = self.__dict__.copy()
        state["_fast_cache"] = {}
        return state

    @classmethod
    def from_preset(cls, preset: Any) -> Discriminator:
        return cls(preset.vocab_size, preset.seq_len, preset.discriminator)

    def config_dict(self) -> dict[str, Any]:
        """Constructor arguments, for checkpoints."""
        return {
            "vocab_size": self.vocab_size,
            "seq_len": self.seq_len,
            "embedding_dim": self.config.embedding_dim,
            "filter_sizes": list(self.config.filter_sizes),
            "num_filters": list(self.config.num_filters),
            "dropout_keep": self.config.dropout_keep,
            "l2_reg": self.config.l2_reg,
        }

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    # -- training path -------------------------------------------------------------------
    def _highway(self, features: torch.Tensor) -> torch.Tensor:
        transform = torch.relu(self.highway_transform(features))
        gate = torch.sigmoid(self.highway_gate(features))
        return gate * transform + (1.0 - gate) * features

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Two-class logits ``(B, 2)`` (column 1 = real) for ``(B, seq_len)`` token ids."""
        x = self.embedding(tokens).transpose(1, 2)  # (B, dim, L) for conv1d
        # ReLU after max-pooling (it is monotone: the same value and gradient) on B x n values
        # instead of B x n x windows; max() with indices backpropagates through one scatter,
        # where amax's backward compares, counts and divides over every window (1.2x D's step).
        pooled = [torch.relu(conv(x).max(dim=2).values) for conv in self.convs]
        features = self._highway(torch.cat(pooled, dim=1))
        return self.output(self.dropout(features))

    def prob_real(self, tokens: torch.Tensor) -> torch.Tensor:
        """P(real) for each row, ``(B,)``."""
        logits = self(tokens)
        return torch.sigmoid(logits[:, 1] - logits[:, 0])

    def l2_penalty(self) -> torch.Tensor:
        """The paper's L2 term on the output layer (weights and bias), ``sum(w^2) / 2``."""
        return 0.5 * (self.output.weight.pow(2).sum() + self.output.bias.pow(2).sum())

    # -- decomposed inference path (the Monte Carlo reward's hot loop) -------------------
    def _fast_params(self, dtype: torch.dtype) -> dict[str, Any]:
        """Weights rearranged for the inference path, cached per compute type until a parameter changes.

        Optimisers update parameters in place, which bumps their version counters; the key
        includes them, so a discriminator retrained in place is picked up on the next call.
        """
        key = (dtype, self.device, parameter_versions(self))
        cached = self._fast_cache.get(dtype)
        if cached is not None and cached[0] == key:
            return cached[1]
        self._fast_cache.pop(dtype, None)  # free the old table before building the new one
        with torch.no_grad():
            dim = self.config.embedding_dim
            fast = {
                # conv weight (n, dim, k) laid out as (k, dim) per filter, the order in which a
                # window of k consecutive embedded tokens already sits in memory.
                "conv": [c.weight.detach().permute(0, 2, 1).reshape(c.out_channels, dim * c.kernel_size[0])
                         .T.contiguous().to(dtype) for c in self.convs],
                "conv_bias": torch.cat([c.bias.detach() for c in self.convs]).float(),
                "highway": torch.cat([self.highway_transform.weight, self.highway_gate.weight]).detach().T.contiguous().to(dtype),
                "highway_bias": torch.cat([self.highway_transform.bias, self.highway_gate.bias]).detach().float(),
                "out_weight": (self.output.weight[1] - self.output.weight[0]).detach().float(),
                "out_bias": float(self.output.bias[1] - self.output.bias[0]),
                "tables": self._conv_tables(dtype),
            }
            if fast["tables"] is None:
                fast["embedding"] = self.embedding.weight.detach().to(dtype)
        self._fast_cache[dtype] = (key, fast)
        return fast

    def _conv_tables(self, dtype: torch.dtype) -> list[torch.Tensor] | None:
        """Per filter size k, ``(k * (V + 1), n_k)``: row ``j * (V + 1) + v`` is token v's
        embedding times the filters' slice at window position j. ``None`` if over budget.

        Stored in float32 for the float32 compute type, otherwise in float16: as fast to
        gather as bfloat16 and eight times as precise (the reduced-precision path's error
        stays that of bfloat16 products, not k bfloat16 roundings), unless a window's sum
        could leave float16's range, when float32 is kept.
        """
        rows = self.vocab_size + 1
        values = rows * sum(k * n for k, n in zip(self.config.filter_sizes, self.config.num_filters))
        stored = torch.float32 if dtype == torch.float32 else torch.float16
        if values * torch.finfo(stored).bits // 8 > TABLE_MAX_BYTES:
            return None
        embedding = self.embedding.weight.detach().float()
        tables, largest = [], 0.0
        for conv in self.convs:  # one float32 table at a time, so the build adds little to peak memory
            # (V + 1, dim) x (n, dim, k) -> (k, V + 1, n)
            table = torch.einsum("vd,ndk->kvn", embedding, conv.weight.detach().float()).reshape(-1, conv.out_channels)
            largest = max(largest, float(table.abs().max()) * conv.kernel_size[0])
            tables.append(table.to(stored).contiguous())
        if stored == torch.float16 and largest > FLOAT16_SAFE_SUM:
            return self._conv_tables(torch.float32)
        return tables

    def _windows(self, tokens: torch.Tensor, index: int, fast: dict[str, Any]) -> torch.Tensor:
        """Pre-bias outputs ``(R, windows, n)`` of convolution ``index`` over every window of
        ``(R, P)`` tokens, in the compute type."""
        size = self.config.filter_sizes[index]
        rows, positions = tokens.shape
        count = positions - size + 1
        tables = fast["tables"]
        if tables is not None:
            # Window position j of token v is row j * (V + 1) + v of the table.
            shift = torch.arange(0, size * (self.vocab_size + 1), self.vocab_size + 1, device=tokens.device)
            bags = (tokens.unfold(1, size, 1) + shift).reshape(rows * count, size)
            return F.embedding_bag(bags, tables[index], mode="sum").view(rows, count, -1)
        embedded = F.embedding(tokens, fast["embedding"])
        dim = embedded.shape[2]
        # Window i is the contiguous run of size*dim values starting at position i: a strided
        # view whose copy into a matrix moves whole runs (4x faster than unfold's (dim, k) order).
        windows = embedded.as_strided((rows, count, size * dim), (embedded.stride(0), dim, 1),
                                      embedded.storage_offset())
        flat = windows.reshape(rows * count, size * dim)
        return (flat @ fast["conv"][index]).view(rows, count, -1)

    @torch.inference_mode()
    def window_maxima(self, tokens: torch.Tensor, first_end: int = 0,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Max over the windows whose last position is ``>= first_end``, before bias and ReLU.

        ``(R, L)`` tokens -> ``(R, features)`` float32. ``first_end=0`` pools every window.
        """
        fast = self._fast_params(dtype)
        pooled = []
        for index, size in enumerate(self.config.filter_sizes):
            start = max(0, first_end - size + 1)
            pooled.append(self._windows(tokens[:, start:], index, fast).amax(dim=1))
        return torch.cat(pooled, dim=1).float()

    @torch.inference_mode()
    def prefix_maxima(self, tokens: torch.Tensor, lengths: torch.Tensor,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Max over the windows lying wholly inside each row's prefix of ``lengths[i]`` tokens.

        Rows with no such window for a filter get ``-inf`` there. ``(B, L)`` -> ``(B, features)``.
        """
        fast = self._fast_params(dtype)
        longest = int(lengths.max()) if lengths.numel() else 0
        lengths = lengths.to(tokens.device).unsqueeze(1)
        pooled = []
        for index, size in enumerate(self.config.filter_sizes):
            if size > longest:  # no window of this size fits in any prefix
                pooled.append(torch.full((tokens.shape[0], self.convs[index].out_channels), float("-inf"),
                                         device=tokens.device))
                continue
            out = self._windows(tokens[:, :longest], index, fast).float()
            last = torch.arange(out.shape[1], device=tokens.device) + (size - 1)
            inside = (last.unsqueeze(0) < lengths).unsqueeze(2)
            pooled.append(out.masked_fill(~inside, float("-inf")).amax(dim=1))
        return torch.cat(pooled, dim=1)

    @torch.inference_mode()
    def last_window_maxima(self, tokens: torch.Tensor, length: int,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Pre-bias outputs of the window of each filter that ends at position ``length - 1``.

        Pooling these into :meth:`prefix_maxima` of ``length - 1`` tokens gives that of
        ``length`` tokens, so a caller that follows prefixes one token at a time pays for
        one window per filter. Filters longer than ``length`` get ``-inf``. ``(B, L)`` ->
        ``(B, features)``.
        """
        fast = self._fast_params(dtype)
        rows = tokens.shape[0]
        pooled = []
        for index, size in enumerate(self.config.filter_sizes):
            if size > length:
                pooled.append(torch.full((rows, self.convs[index].out_channels), float("-inf"),
                                         device=tokens.device))
            else:
                pooled.append(self._windows(tokens[:, length - size : length], index, fast)[:, 0].float())
        return torch.cat(pooled, dim=1)

    def weights_key(self, dtype: torch.dtype) -> Any:
        """Changes whenever the weights do (cache key for pooled prefix features)."""
        self._fast_params(dtype)
        return self._fast_cache[dtype][0]

    @torch.inference_mode()
    def head(self, raw_maxima: torch.Tensor, dtype: torch.dtype = torch.float32, logit: bool = False) -> torch.Tensor:
        """P(real) ``(R,)`` from pooled pre-bias maxima ``(R, features)`` (inference, no dropout);
        ``logit=True``: its logit, float32 (what :mod:`seqgan_env.rewards.forms` reads)."""
        fast = self._fast_params(dtype)
        features = torch.add(raw_maxima, fast["conv_bias"]).clamp_(min=0.0)
        # bfloat16 product + float32 bias promotes to float32: the widening and the bias in one pass.
        mixed = torch.add(torch.mm(features.to(dtype), fast["highway"]), fast["highway_bias"])
        width = features.shape[1]
        highway = mixed[:, :width].clamp_(min=0.0)  # transform branch, in place
        gate = mixed[:, width:].sigmoid_()
        highway.sub_(features).mul_(gate).add_(features)  # gate * transform + (1 - gate) * features
        logits = (highway @ fast["out_weight"] + fast["out_bias"]).float()
        return logits if logit else torch.sigmoid(logits)

    @torch.inference_mode()
    def score(self, tokens: torch.Tensor, dtype: torch.dtype = torch.float32,
              batch_size: int = 4096, logit: bool = False) -> torch.Tensor:
        """P(real) of whole sequences by the fast path, ``(R,)`` (inference, no dropout); ``logit=True``: its logit."""
        return torch.cat([
            self.head(self.window_maxima(tokens[i : i + batch_size], 0, dtype), dtype, logit)
            for i in range(0, tokens.shape[0], batch_size)
        ]) if tokens.shape[0] else torch.empty(0, device=tokens.device)


def fit_discriminator(discriminator: Discriminator | PrefixDiscriminator, real: torch.Tensor, fake: torch.Tensor,
                      epochs: int, optimizer: torch.optim.Optimizer, batch_size: int = 64,
                      rng: torch.Generator | None = None, label_smoothing: float = 0.0,
                      weight_decay: float = 0.0) -> dict[str, float]:
    """Train D in place on ``real`` (label 1) against ``fake`` (label 0), shuffled, for ``epochs``.

    Returns the mean loss and the accuracy over the last epoch's batches. The one D-training
    step of the project: pretraining, the adversarial loop and SB3's callback all call it.
    Where the hardware has native bfloat16 the forward pass runs under bfloat16 autocast
    (:func:`~seqgan_env.precision.training_autocast`); the loss and the update stay float32.

    Either discriminator: the paper's CNN (:class:`Discriminator`, its two-class cross-entropy
    plus its L2 term on the output layer) or the :class:`PrefixDiscriminator`, whose binary
    cross-entropy is averaged over every prefix position (every prefix of a real sequence is
    real, every prefix of a generated one is not; PAD positions after an end token are not
    prefixes and are left out). Its accuracy is that of the whole sequences (last position).

    Regularisation against saturation (both off by default, as in the paper):

    * ``label_smoothing`` = α: one-sided label smoothing (Salimans et al., 2016, "Improved
      Techniques for Training GANs", after Szegedy et al., 2016): real sequences get the target
      ``1 - α`` instead of 1, generated ones keep 0. D is no longer paid for pushing P(real)
      of real data to 1, which bounds the logits it grows; smoothing the fake targets too
      would move D's optimum towards the generator's own distribution, so they stay 0.
    * ``weight_decay`` = λ: an L2 penalty ``λ/2 · Σ θ²`` over all of D's weights, added to
      the loss (so it acts whatever optimiser the caller passes), which keeps D smooth.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if weight_decay < 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    device = discriminator.device
    tokens = torch.cat([real.to(device), fake.to(device)])  # real data may live on the CPU, samples on a GPU
    labels = torch.cat([torch.ones(real.shape[0]), torch.zeros(fake.shape[0])]).to(device)
    prefix = isinstance(discriminator, PrefixDiscriminator)
    discriminator.train()
    total, correct, batches = 0.0, 0, 0
    for _ in range(epochs):
        total, correct, batches = 0.0, 0, 0
        order = torch.randperm(tokens.shape[0], generator=rng).to(device)
        for start in range(0, tokens.shape[0], batch_size):
            index = order[start : start + batch_size]
            batch, label = tokens[index], labels[index]
            with training_autocast(device):
                logits = discriminator(batch).float()
            target = label * (1.0 - label_smoothing)
            if prefix:  # (B, T) logits, one per prefix; PAD positions are no prefix
                valid = (batch != discriminator.pad_token).float()
                per_position = F.binary_cross_entropy_with_logits(
                    logits, target.unsqueeze(1).expand_as(logits), reduction="none")
                loss = (per_position * valid).sum() / valid.sum().clamp(min=1.0)
                last = (valid.sum(dim=1).long() - 1).clamp(min=0)
                score = logits.gather(1, last.unsqueeze(1)).squeeze(1)
                penalty = torch.zeros((), device=device)
            else:  # the paper's two-class cross-entropy, P(real) = sigmoid(l1 - l0)
                score = logits[:, 1] - logits[:, 0]
                loss = F.cross_entropy(logits, torch.stack([1.0 - target, target], dim=1))
                penalty = discriminator.config.l2_reg * discriminator.l2_penalty()
            if weight_decay:
                penalty = penalty + 0.5 * weight_decay * sum(p.pow(2).sum() for p in discriminator.parameters())
            optimizer.zero_grad(set_to_none=True)
            (loss + penalty).backward()
            optimizer.step()
            total += loss.item()
            correct += int(((score > 0) == (label > 0.5)).sum())
            batches += 1
    discriminator.eval()
    return {"d_loss": total / max(batches, 1), "d_accuracy": correct / max(tokens.shape[0], 1)}
