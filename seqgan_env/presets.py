"""Named configurations shared by every layer of the project.

A preset fixes the shape of the problem (vocabulary, sequence length), the sizes of the
generator, oracle and discriminator, and the reward's number of Monte Carlo rollouts.
Training schedules (epochs, learning rates) live in ``train.config`` and are keyed by the
same preset names.

``paper`` is the synthetic experiment of Yu et al. (2017), "SeqGAN: Sequence Generative
Adversarial Nets with Policy Gradient"; ``default`` keeps the paper's generator and oracle
but uses a smaller discriminator so the embedded default files stay small; ``text`` is for
real text (its vocabulary and length are set from the corpus); ``tiny`` is for tests and
quick experiments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

# The paper's discriminator: window sizes and the number of filters of each size.
PAPER_FILTER_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
PAPER_NUM_FILTERS: tuple[int, ...] = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of the CNN discriminator (Kim-style text CNN with a highway layer)."""

    embedding_dim: int = 64
    """Size of the discriminator's own token embedding."""
    filter_sizes: tuple[int, ...] = PAPER_FILTER_SIZES
    """Convolution window lengths, in tokens."""
    num_filters: tuple[int, ...] = PAPER_NUM_FILTERS
    """Number of filters for each window length (same order as ``filter_sizes``)."""
    dropout_keep: float = 0.75
    """Keep probability of the dropout before the output layer (training only)."""
    l2_reg: float = 0.2
    """L2 penalty on the output layer's weights and bias, added to the training loss."""

    def __post_init__(self) -> None:
        if len(self.filter_sizes) != len(self.num_filters):
            raise ValueError(
                f"filter_sizes has {len(self.filter_sizes)} entries but num_filters has "
                f"{len(self.num_filters)}; they must pair up"
            )
        if not 0.0 < self.dropout_keep <= 1.0:
            raise ValueError(f"dropout_keep must be in (0, 1], got {self.dropout_keep}")

    @property
    def feature_dim(self) -> int:
        """Width of the pooled feature vector (total number of filters)."""
        return int(sum(self.num_filters))


@dataclass(frozen=True)
class Preset:
    """Everything that fixes the shape of a SeqGAN problem."""

    name: str
    """Name under which the preset is registered."""
    vocab_size: int = 5000
    """Number of tokens the generator can emit (the action space size)."""
    seq_len: int = 20
    """Length of a finished sequence (episode length)."""
    start_token: int = 0
    """Token fed as the first input of the generator and oracle; not emitted."""
    eos_token: int | None = None
    """End-of-sequence id (text data: episodes and Monte Carlo completions stop there);
    ``None`` for the synthetic experiment, whose sequences all have ``seq_len`` tokens."""
    gen_embedding_dim: int = 32
    """Generator token embedding size."""
    gen_hidden_dim: int = 32
    """Generator LSTM hidden size."""
    oracle_embedding_dim: int = 32
    """Oracle token embedding size."""
    oracle_hidden_dim: int = 32
    """Oracle LSTM hidden size."""
    oracle_seed: int = 88
    """Seed of the built-in oracle's N(0, 1) parameters."""
    num_rollouts: int = 16
    """Monte Carlo completions per step for the reward (N in the paper)."""
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    """Discriminator shape."""

    def replace(self, **changes: Any) -> Preset:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for checkpoints and logs."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preset:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        disc = data.pop("discriminator", {})
        disc = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(disc).items()}
        return cls(discriminator=DiscriminatorConfig(**disc), **data)


# The paper's windows with a quarter of its filters: the default and text presets' D.
SMALL_DISCRIMINATOR = DiscriminatorConfig(
    embedding_dim=32, num_filters=(25, 50, 50, 50, 50, 25, 25, 25, 25, 25, 40, 40),
)

PRESETS: dict[str, Preset] = {
    "paper": Preset(name="paper"),
    "default": Preset(name="default", discriminator=SMALL_DISCRIMINATOR),
    # Real text: vocabulary size and sequence length come from the corpus (seqgan_env.text);
    # a wider generator than the synthetic experiment's, the default preset's discriminator.
    "text": Preset(
        name="text",
        vocab_size=5000,
        seq_len=32,
        start_token=0,
        eos_token=1,
        gen_embedding_dim=64,
        gen_hidden_dim=64,
        discriminator=SMALL_DISCRIMINATOR,
    ),
    "tiny": Preset(
        name="tiny",
        vocab_size=64,
        seq_len=8,
        gen_embedding_dim=16,
        gen_hidden_dim=16,
        oracle_embedding_dim=16,
        oracle_hidden_dim=16,
        num_rollouts=4,
        discriminator=DiscriminatorConfig(
            embedding_dim=16,
            filter_sizes=(1, 2, 3, 4, 8),
            num_filters=(16, 16, 16, 16, 16),
        ),
    ),
}


def get_preset(name: str | Preset) -> Preset:
    """Look a preset up by name (a :class:`Preset` passes through unchanged)."""
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose one of {sorted(PRESETS)}"
        ) from None
