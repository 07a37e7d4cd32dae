"""A frozen copy of the Monte Carlo reward engine as it was before issue 15, for benchmarks only.

``benchmarks/bench_rewards.py`` runs this engine and the package's current one side by side
in one process, so that the speed-up is measured on the same machine in the same state.
Nothing outside ``benchmarks/`` imports it. The code is the engine of commit 93e92e8
(``seqgan_env/rollout.py``, ``sampling.py``, the discriminator's matrix-product inference
path and ``MonteCarloReward.step``), unchanged except that the discriminator's methods take
the discriminator as an argument (:class:`BaselineDiscriminator` wraps one).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.rewards import MonteCarloReward
from seqgan_env.rollout import PrefixStates, RolloutPolicy, State, _repeat, _select, _where

BLOCK = 100
"""Tokens per block of the two-level search."""


def _block_layout(categories: int) -> tuple[int, int]:
    block = min(BLOCK, categories)
    return block, -(-categories // block)


def sample_categorical(
    logits: torch.Tensor,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    num_samples: int | None = None,
) -> torch.Tensor:
    """Draw indices from ``softmax(logits / temperature)``, independently per row.

    Args:
        logits: ``(rows, categories)`` unnormalised log-probabilities. Not modified.
        generator: source of randomness (``None``: torch's global generator).
        temperature: divides the logits; below 1 sharpens, above 1 flattens.
        num_samples: draws per row; ``None`` returns ``(rows,)``, an integer ``(rows, n)``.

    Returns:
        int64 indices on the logits' device.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rows, categories = logits.shape
    draws = 1 if num_samples is None else num_samples
    scaled = logits.float() if temperature == 1.0 else logits.float() / temperature
    # A fresh float32 copy (bfloat16 input, or a temperature) is exponentiated in place:
    # widening then exp_ is faster than torch's bfloat16 exp.
    weights = scaled.exp_() if scaled is not logits else torch.exp(scaled)
    block, blocks = _block_layout(categories)
    padded = blocks * block
    if padded != categories:  # zero weight for the padding of the last block
        weights = torch.nn.functional.pad(weights, (0, padded - categories))
    grid = weights.view(rows, blocks, block)
    block_cdf = grid.sum(dim=2).cumsum_(dim=1)
    total = block_cdf[:, -1]
    bad = ~torch.isfinite(total) | (total <= 0)
    if bool(bad.any()):  # overflow or underflow: redo those rows with the max subtracted
        rows_logits = logits[bad].float() / temperature
        shifted = rows_logits - rows_logits.amax(dim=1, keepdim=True)
        redo = torch.nn.functional.pad(torch.exp(shifted), (0, padded - categories))
        grid = grid.clone()
        grid[bad] = redo.view(-1, blocks, block)
        block_cdf = grid.sum(dim=2).cumsum_(dim=1)
        total = block_cdf[:, -1]
    u = torch.rand((rows, draws), generator=generator, device=logits.device).mul_(total.unsqueeze(1))
    chosen = torch.searchsorted(block_cdf, u, right=True).clamp_(max=blocks - 1)  # (rows, draws)
    before = torch.nn.functional.pad(block_cdf, (1, 0)).gather(1, chosen)
    inner = grid.gather(1, chosen.unsqueeze(2).expand(rows, draws, block)).cumsum_(dim=2)
    offset = torch.searchsorted(inner, (u - before).unsqueeze(2), right=True).squeeze(2)
    index = (chosen * block + offset.clamp_(max=block - 1)).clamp_(max=categories - 1)
    return index.squeeze(1) if num_samples is None else index


def _lstm_step(policy: TokenLSTM, tokens: torch.Tensor, state: State,
               logits_dtype: torch.dtype) -> tuple[torch.Tensor, State]:
    """``TokenLSTM.step``'s inference path as it was (output layer in ``logits_dtype``)."""
    x = policy.embedding(tokens)
    h, c = torch.lstm_cell(x, state, policy.lstm.weight_ih_l0, policy.lstm.weight_hh_l0,
                           policy.lstm.bias_ih_l0, policy.lstm.bias_hh_l0)
    ones = torch.ones(h.shape[0], 1, dtype=h.dtype, device=h.device)
    weight, bias = policy.output.weight, policy.output.bias
    key = (id(weight), weight._version, id(bias), bias._version, logits_dtype)
    if _MERGED.get(id(policy), (None,))[0] != key:
        _MERGED[id(policy)] = (key, torch.cat([weight.T, bias.unsqueeze(0)]).contiguous().to(logits_dtype))
    return torch.mm(torch.cat([h, ones], dim=1).to(logits_dtype), _MERGED[id(policy)][1]), (h, c)


_MERGED: dict[int, tuple[Any, torch.Tensor]] = {}


class BaselineDiscriminator:
    """The old inference path (convolutions as matrix products) over a :class:`Discriminator`'s weights."""

    def __init__(self, discriminator: Discriminator) -> None:
        self.module = discriminator
        self.config = discriminator.config
        self.convs = discriminator.convs
        self.embedding = discriminator.embedding
        self.highway_transform = discriminator.highway_transform
        self.highway_gate = discriminator.highway_gate
        self.output = discriminator.output
        self._fast_cache: tuple[Any, dict[str, Any]] | None = None

    @property
    def device(self) -> torch.device:
        return self.module.device

    def parameters(self):
        return self.module.parameters()

    def _fast_params(self, dtype: torch.dtype) -> dict[str, Any]:
        """Weights rearranged for the matrix-product path, cached until a parameter changes.

        Optimisers update parameters in place, which bumps their version counters; the key
        includes them, so a discriminator retrained in place is picked up on the next call.
        """
        params = list(self.parameters())
        key = (dtype, self.device, tuple(id(p) for p in params), tuple(p._version for p in params))
        if self._fast_cache is not None and self._fast_cache[0] == key:
            return self._fast_cache[1]
        with torch.no_grad():
            dim = self.config.embedding_dim
            fast = {
                "embedding": self.embedding.weight.detach().to(dtype),
                # conv weight (n, dim, k) laid out as (k, dim) per filter, the order in which a
                # window of k consecutive embedded tokens already sits in memory.
                "conv": [c.weight.detach().permute(0, 2, 1).reshape(c.out_channels, dim * c.kernel_size[0])
                         .T.contiguous().to(dtype) for c in self.convs],
                "conv_bias": torch.cat([c.bias.detach() for c in self.convs]).float(),
                "highway": torch.cat([self.highway_transform.weight, self.highway_gate.weight]).detach().T.contiguous().to(dtype),
                "highway_bias": torch.cat([self.highway_transform.bias, self.highway_gate.bias]).detach().float(),
                "out_weight": (self.output.weight[1] - self.output.weight[0]).detach().float(),
                "out_bias": float(self.output.bias[1] - self.output.bias[0]),
            }
        self._fast_cache = (key, fast)
        return fast

    def _conv_windows(self, embedded: torch.Tensor, index: int, fast: dict[str, Any]) -> torch.Tensor:
        """Pre-bias outputs ``(R, windows, n)`` of convolution ``index`` over ``(R, P, dim)``."""
        size = self.config.filter_sizes[index]
        rows, positions, dim = embedded.shape
        count = positions - size + 1
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
        sizes = self.config.filter_sizes
        begin = max(0, first_end - max(sizes) + 1)
        embedded = F.embedding(tokens[:, begin:], fast["embedding"])
        pooled = []
        for index, size in enumerate(sizes):
            start = max(0, first_end - size + 1) - begin
            pooled.append(self._conv_windows(embedded[:, start:], index, fast).amax(dim=1))
        return torch.cat(pooled, dim=1).float()

    @torch.inference_mode()
    def prefix_maxima(self, tokens: torch.Tensor, lengths: torch.Tensor,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Max over the windows lying wholly inside each row's prefix of ``lengths[i]`` tokens.

        Rows with no such window for a filter get ``-inf`` there. ``(B, L)`` -> ``(B, features)``.
        """
        fast = self._fast_params(dtype)
        longest = int(lengths.max()) if lengths.numel() else 0
        embedded = F.embedding(tokens[:, :longest], fast["embedding"])
        lengths = lengths.to(tokens.device).unsqueeze(1)
        pooled = []
        for index, size in enumerate(self.config.filter_sizes):
            if size > longest:  # no window of this size fits in any prefix
                pooled.append(torch.full((tokens.shape[0], self.convs[index].out_channels), float("-inf"),
                                         device=tokens.device))
                continue
            out = self._conv_windows(embedded, index, fast).float()
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
        widest = min(length, max(self.config.filter_sizes))
        embedded = F.embedding(tokens[:, length - widest : length], fast["embedding"])
        rows, dim = tokens.shape[0], self.config.embedding_dim
        pooled = []
        for index, size in enumerate(self.config.filter_sizes):
            if size > length:
                pooled.append(torch.full((rows, self.convs[index].out_channels), float("-inf"),
                                         device=tokens.device))
            else:
                window = embedded[:, widest - size :].reshape(rows, size * dim)
                pooled.append((window @ fast["conv"][index]).float())
        return torch.cat(pooled, dim=1)

    def weights_key(self, dtype: torch.dtype) -> Any:
        """Changes whenever the weights do (cache key for pooled prefix features)."""
        self._fast_params(dtype)
        assert self._fast_cache is not None
        return self._fast_cache[0]

    @torch.inference_mode()
    def head(self, raw_maxima: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """P(real) ``(R,)`` from pooled pre-bias maxima ``(R, features)`` (inference, no dropout)."""
        fast = self._fast_params(dtype)
        features = torch.add(raw_maxima, fast["conv_bias"]).clamp_(min=0.0)
        mixed = torch.mm(features.to(dtype), fast["highway"]).float().add_(fast["highway_bias"])
        width = features.shape[1]
        highway = mixed[:, :width].clamp_(min=0.0)  # transform branch, in place
        gate = mixed[:, width:].sigmoid_()
        highway.sub_(features).mul_(gate).add_(features)  # gate * transform + (1 - gate) * features
        return torch.sigmoid(highway @ fast["out_weight"] + fast["out_bias"])

    @torch.inference_mode()
    def score(self, tokens: torch.Tensor, dtype: torch.dtype = torch.float32,
              batch_size: int = 4096) -> torch.Tensor:
        return torch.cat([
            self.head(self.window_maxima(tokens[i : i + batch_size], 0, dtype), dtype)
            for i in range(0, tokens.shape[0], batch_size)
        ]) if tokens.shape[0] else torch.empty(0, device=tokens.device)


@torch.inference_mode()
def monte_carlo_rewards(
    discriminator: BaselineDiscriminator,
    policy: RolloutPolicy,
    prefix_logits: torch.Tensor,
    prefix_state: State,
    sequences: torch.Tensor,
    lengths: torch.Tensor,
    num_rollouts: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    eos_token: int | None = None,
    pad_token: int | None = None,
    max_completions: int = 1024,
    prefix_max: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean P(real) over ``num_rollouts`` completions of each unfinished prefix.

    Args:
        discriminator: scores completed sequences.
        policy: completes prefixes, starting from ``prefix_logits``/``prefix_state``.
        prefix_logits: ``(B, vocab)`` next-token logits after each prefix.
        prefix_state: the policy's state after each prefix (batch first).
        sequences: ``(B, L)`` token ids; positions at and past ``lengths`` are ignored.
        lengths: ``(B,)`` prefix lengths, each ``< L``.
        num_rollouts: completions per prefix (N).
        generator: randomness of the completions.
        dtype: compute type (float32 or bfloat16) of the discriminator's matrix products and of
            the rollout policy's output layer when it is a TokenLSTM.
        eos_token: if set, a completion ends when it emits it; later positions get ``pad_token``.
        pad_token: filler after an end-of-sequence token.
        max_completions: completions processed together; bounds memory.
        prefix_max: ``(B, features)`` :meth:`Discriminator.prefix_maxima` of the prefixes, if
            the caller keeps it up to date; computed here otherwise.

    Returns:
        ``(B,)`` float32 rewards.
    """
    batch, seq_len = sequences.shape
    chunk = max(1, max_completions // num_rollouts)
    if batch > chunk:
        return torch.cat([
            monte_carlo_rewards(
                discriminator, policy, prefix_logits[i : i + chunk], _select(prefix_state, slice(i, i + chunk)),
                sequences[i : i + chunk], lengths[i : i + chunk], num_rollouts, generator, dtype,
                eos_token, pad_token, max_completions,
                None if prefix_max is None else prefix_max[i : i + chunk],
            )
            for i in range(0, batch, chunk)
        ])
    first = int(lengths.min())
    uniform = bool((lengths == first).all())
    if prefix_max is None:
        prefix_max = discriminator.prefix_maxima(sequences, lengths, dtype)

    completions = sequences.repeat_interleave(num_rollouts, dim=0)
    row_lengths = lengths.repeat_interleave(num_rollouts)
    ended = torch.zeros(completions.shape[0], dtype=torch.bool, device=completions.device)
    if eos_token is not None:  # an end token inside the prefix ends the sequence there
        inside = torch.arange(seq_len, device=completions.device) < row_lengths.unsqueeze(1)
        ended = ((completions == eos_token) & inside).any(dim=1)
    # The generator's output layer (the costliest product of the completions) follows the
    # discriminator's compute type; a policy that is not a TokenLSTM gets plain step().
    step_options = {"logits_dtype": dtype} if isinstance(policy, TokenLSTM) else {}
    state = _repeat(prefix_state, num_rollouts)
    logits = None  # the first draw of every completion comes from its prefix's logits
    for pos in range(first, seq_len):
        if logits is None:
            token = sample_categorical(prefix_logits, generator, num_samples=num_rollouts).view(-1)
            if not uniform:
                logits = prefix_logits.repeat_interleave(num_rollouts, dim=0).to(dtype)
        else:
            token = sample_categorical(logits, generator)
        fill = None if uniform else row_lengths <= pos
        if eos_token is not None:
            token = torch.where(ended, torch.full_like(token, pad_token), token)
        if fill is None:
            completions[:, pos] = token
        else:
            completions[:, pos] = torch.where(fill, token, completions[:, pos])
        if eos_token is not None:
            ended = ended | ((token == eos_token) & (fill if fill is not None else True))
        if pos + 1 < seq_len:
            step_tokens = completions[:, pos].clamp(max=prefix_logits.shape[1] - 1)
            new_logits, new_state = (_lstm_step(policy, step_tokens, state, dtype) if step_options
                                     else policy.step(step_tokens, state))
            if fill is None:
                logits, state = new_logits, new_state
            else:
                logits = torch.where(fill.unsqueeze(1), new_logits, logits)
                state = _where(fill, new_state, state)

    suffix_max = discriminator.window_maxima(completions, first, dtype)
    pooled = torch.maximum(suffix_max, prefix_max.repeat_interleave(num_rollouts, dim=0))
    scores = discriminator.head(pooled, dtype)
    return scores.view(batch, num_rollouts).mean(dim=1)


class BaselineMonteCarloReward(MonteCarloReward):
    """``MonteCarloReward`` computed by the frozen engine above."""

    def __init__(self, discriminator: Discriminator, *args: Any, **kwargs: Any) -> None:
        super().__init__(discriminator, *args, **kwargs)
        self.discriminator = BaselineDiscriminator(self.discriminator)

    def set_discriminator(self, discriminator: Discriminator) -> None:
        self.discriminator = BaselineDiscriminator(discriminator)

    def _final_scores(self, sequences: torch.Tensor) -> torch.Tensor:
        return self.discriminator.score(sequences, self.compute_dtype)

    def step(self, sequences, lengths, actions, finished):
        if self.prefixes is None:
            raise RuntimeError("reset() must be called before step()")
        if self._stale:
            self.prefixes = PrefixStates(self.rollout_policy, sequences.shape[0])
            self.prefixes.rebuild(sequences, lengths)
            self._stale = False
        else:
            self.prefixes.advance(actions)
        rewards = torch.empty(sequences.shape[0], device=self.device)
        if bool(finished.any()):
            rewards[finished] = self._final_scores(sequences[finished])
        open_rows = ~finished
        if bool(open_rows.all()):
            rewards = monte_carlo_rewards(
                self.discriminator, self.rollout_policy, self.prefixes.logits, self.prefixes.state,
                sequences, lengths, self.num_rollouts, self.generator, self.compute_dtype,
                self.eos_token, self.pad_token, prefix_max=self._pooled_prefixes(sequences, lengths),
            )
        elif bool(open_rows.any()):
            state = tuple(part[open_rows] for part in self.prefixes.state)
            rewards[open_rows] = monte_carlo_rewards(
                self.discriminator, self.rollout_policy, self.prefixes.logits[open_rows], state,
                sequences[open_rows], lengths[open_rows], self.num_rollouts, self.generator,
                self.compute_dtype, self.eos_token, self.pad_token,
            )
        return rewards

    def _pooled_prefixes(self, sequences: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """D's prefix maxima, updated by one window per filter when every row grew by one."""
        disc, dtype = self.discriminator, self.compute_dtype
        length = int(lengths[0])
        uniform = bool((lengths == length).all())
        key = (id(disc), disc.weights_key(dtype))
        if uniform and length == 1:
            self._prefix_max = disc.last_window_maxima(sequences, 1, dtype)
        elif (uniform and self._prefix_max is not None and self._prefix_key == (key, length - 1)
              and self._prefix_max.shape[0] == sequences.shape[0]):
            self._prefix_max = torch.maximum(self._prefix_max, disc.last_window_maxima(sequences, length, dtype))
        else:
            self._prefix_max = disc.prefix_maxima(sequences, lengths, dtype)
        self._prefix_key = (key, length if uniform else None)
        return self._prefix_max


