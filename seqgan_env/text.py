"""Text data: a vocabulary with the MDP's special tokens, and corpora read from files.

A :class:`Vocabulary` maps tokens (words for English and similar scripts, characters for
Chinese and similar ones) to the ids the generator emits. Its first ids are special:

====  =========  ==========================================================================
id    token      role
====  =========  ==========================================================================
0     ``<bos>``  start token: the generator's first input, never part of a sequence
1     ``<eos>``  end of sequence: the episode (and every Monte Carlo completion) stops there
2     ``<unk>``  stands for every token outside the vocabulary
size  ``<pad>``  fills a sequence after its end; equal to ``vocab.size``, i.e. the env's PAD
====  =========  ==========================================================================

so a vocabulary of ``size`` ids gives an environment with ``vocab_size = size``,
``eos_token = 1``, ``start_token = 0``, and observations padded with ``size``.

:func:`load_corpus` reads a UTF-8 file of one sequence per line, builds the vocabulary on the
training split and encodes both splits. Its treatment of awkward input is documented there.
"""

from __future__ import annotations

import dataclasses
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from seqgan_env.presets import Preset

BOS, EOS, UNK = 0, 1, 2
SPECIAL_TOKENS = ("<bos>", "<eos>", "<unk>")
PAD_NAME = "<pad>"
LEVELS = ("word", "char")

# A word, a number, or one punctuation mark; apostrophes and hyphens inside words stay.
_WORD = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]")


def _is_wide_script(char: str) -> bool:
    """Characters of scripts written without spaces between words (CJK, kana, Thai...)."""
    name = unicodedata.name(char, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "TIBETAN"))


def guess_level(lines: Sequence[str]) -> str:
    """``"char"`` when most letters belong to scripts without word spaces, else ``"word"``."""
    letters = [c for line in lines[:2000] for c in line if c.isalpha()]
    if not letters:
        return "word"
    wide = sum(_is_wide_script(c) for c in letters)
    return "char" if wide > len(letters) / 2 else "word"


class Vocabulary:
    """Token <-> id mapping with the special tokens in front (see the module docstring).

    Args:
        tokens: the ordinary tokens, most frequent first; the special ones are added in front.
        level: ``"word"`` (tokens are words and punctuation, joined by spaces when decoding)
            or ``"char"`` (tokens are characters, joined with nothing).
        lowercase: fold case before looking tokens up (word level).
    """

    def __init__(self, tokens: Iterable[str], level: str = "word", lowercase: bool = True) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown vocabulary level {level!r}; choose one of {list(LEVELS)}")
        self.level = level
        self.lowercase = lowercase
        self.tokens: list[str] = list(SPECIAL_TOKENS)
        for token in tokens:
            if token in SPECIAL_TOKENS or token == PAD_NAME:
                continue
            self.tokens.append(token)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary tokens must be distinct")

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, lines: Iterable[str], level: str = "word", min_count: int = 1, max_size: int | None = None,
              lowercase: bool = True) -> Vocabulary:
        """The vocabulary of ``lines``: tokens seen at least ``min_count`` times, most frequent
        first, at most ``max_size`` ids in all (special tokens included)."""
        probe = cls([], level, lowercase)
        counts = Counter(token for line in lines for token in probe.tokenize(line))
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            if max_size <= len(SPECIAL_TOKENS):
                raise ValueError(f"max_size {max_size} leaves no room beside the {len(SPECIAL_TOKENS)} special tokens")
            ranked = ranked[: max_size - len(SPECIAL_TOKENS)]
        return cls(ranked, level, lowercase)

    # -- sizes and ids -------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Ids the generator can emit (the env's ``vocab_size``); also the PAD id."""
        return len(self.tokens)

    @property
    def pad(self) -> int:
        return self.size

    def __len__(self) -> int:
        return self.size

    # -- text <-> ids --------------------------------------------------------------------
    def tokenize(self, line: str) -> list[str]:
        """Split one line into tokens (no ids yet)."""
        if self.level == "char":
            return [" " if c.isspace() else c for c in " ".join(line.split())]
        if self.lowercase:
            line = line.lower()
        return _WORD.findall(line)

    def encode(self, line: str) -> list[int]:
        """Token ids of one line, unknown tokens as ``<unk>``, no ``<eos>`` appended."""
        return [self.index.get(token, UNK) for token in self.tokenize(line)]

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first ``<eos>``, with ``<bos>`` and PAD skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i == BOS or i == self.pad:
                continue
            if not 0 <= i < self.size:
                raise ValueError(f"token id {i} is outside this vocabulary of {self.size} ids")
            out.append(self.tokens[i])
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` (see :meth:`decode_tokens`): words joined by spaces, characters by nothing."""
        return (" " if self.level == "word" else "").join(self.decode_tokens(ids))

    # -- checkpoints ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        try:
            tokens = list(data["tokens"])
            if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
                raise ValueError(f"the first tokens must be {SPECIAL_TOKENS}")
            return cls(tokens[len(SPECIAL_TOKENS):], data["level"], data.get("lowercase", True))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a saved vocabulary: {exc}") from exc


def encode_lines(vocab: Vocabulary, token_lists: Sequence[Sequence[int]], max_length: int) -> torch.Tensor:
    """``(N, max_length)`` int64: each sequence, then ``<eos>`` if it fits, then PAD."""
    out = torch.full((len(token_lists), max_length), vocab.pad, dtype=torch.long)
    for row, ids in enumerate(token_lists):
        ids = list(ids)[:max_length]
        if len(ids) < max_length:
            ids.append(EOS)
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


@dataclass
class Corpus:
    """A tokenised corpus split into training and held-out test sequences."""

    vocab: Vocabulary
    train: torch.Tensor
    """``(N, max_length)`` ids, ``<eos>``-terminated and PAD-filled."""
    test: torch.Tensor
    """Held-out sequences, same layout."""
    source: str
    report: dict[str, Any] = field(default_factory=dict)
    """What loading did: line counts, lines dropped or truncated, unknown-token rate."""

    @property
    def max_length(self) -> int:
        return int(self.train.shape[1])

    def references(self, split: str = "test") -> list[list[str]]:
        """The split's sentences as token lists (BLEU references)."""
        data = self.test if split == "test" else self.train
        return [self.vocab.decode_tokens(row) for row in data.tolist()]


LONG_LINE_TREATMENTS = ("drop", "truncate", "error")


def read_lines(path: str | Path) -> list[str]:
    """Non-blank, stripped lines of a UTF-8 text file, with clear errors for files that are not."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} is not a file")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"data file {str(path)!r} is empty")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"data file {str(path)!r} looks binary (it holds NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(f"data file {str(path)!r} is not UTF-8 text: undecodable byte at line {line}") from None
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return [line for line in lines if line]


def build_corpus(lines: Sequence[str], source: str, max_length: int, level: str = "auto",
                 test_fraction: float = 0.1, min_count: int = 2, max_vocab: int | None = 10_000,
                 long_lines: str = "drop", seed: int = 0) -> Corpus:
    """Tokenise, split and encode ``lines`` (one sequence each).

    * The split is random (``seed``); ``test_fraction`` of the lines (at least one) are held out.
    * The vocabulary is built on the training lines only: tokens seen fewer than
      ``min_count`` times there, or beyond the ``max_vocab`` most frequent, become ``<unk>``,
      as do test tokens never seen in training.
    * A line of more than ``max_length - 1`` tokens has no room for ``<eos>``:
      ``long_lines="drop"`` (default) leaves it out, ``"truncate"`` keeps its first
      ``max_length`` tokens (no ``<eos>``: the episode ends at the length limit), ``"error"``
      refuses the file.
    """
    if long_lines not in LONG_LINE_TREATMENTS:
        raise ValueError(f"long_lines must be one of {list(LONG_LINE_TREATMENTS)}, got {long_lines!r}")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 (a token and <eos>), got {max_length}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(lines) < 2:
        raise ValueError(f"{source}: needs at least 2 non-blank lines (one to train on, one to test), found {len(lines)}")
    level = guess_level(lines) if level == "auto" else level
    probe = Vocabulary([], level)
    tokenised = [probe.tokenize(line) for line in lines]
    too_long = [i for i, toks in enumerate(tokenised) if len(toks) > max_length - 1]
    if too_long and long_lines == "error":
        raise ValueError(f"{source}: {len(too_long)} lines are longer than {max_length - 1} tokens "
                         f"(first: line {too_long[0] + 1}); raise the maximum length or choose drop/truncate")
    keep = [i for i in range(len(lines)) if long_lines != "drop" or len(tokenised[i]) <= max_length - 1]
    if len(keep) < 2:
        raise ValueError(f"{source}: fewer than 2 lines fit in {max_length - 1} tokens; raise the maximum length")
    order = keep[:]
    random.Random(seed).shuffle(order)
    n_test = max(1, int(round(len(order) * test_fraction)))
    test_idx, train_idx = order[:n_test], order[n_test:]
    vocab = Vocabulary.build((lines[i] for i in train_idx), level, min_count, max_vocab)

    def encode(indices: list[int]) -> tuple[torch.Tensor, int, int]:
        ids = [[vocab.index.get(t, UNK) for t in tokenised[i]] for i in indices]
        unknown = sum(row.count(UNK) for row in ids)
        return encode_lines(vocab, ids, max_length), unknown, sum(len(r) for r in ids)

    train, train_unk, train_tokens = encode(train_idx)
    test, test_unk, test_tokens = encode(test_idx)
    report = {
        "lines": len(lines), "train_lines": len(train_idx), "test_lines": len(test_idx),
        "dropped_long_lines": len(too_long) if long_lines == "drop" else 0,
        "truncated_long_lines": len(too_long) if long_lines == "truncate" else 0,
        "vocab_size": vocab.size, "level": level,
        "unk_rate_train": train_unk / max(train_tokens, 1), "unk_rate_test": test_unk / max(test_tokens, 1),
    }
    return Corpus(vocab, train, test, source, report)


def load_corpus(path: str | Path, max_length: int, **options: Any) -> Corpus:
    """:func:`build_corpus` of a UTF-8 text file with one sequence per line (blank lines skipped)."""
    return build_corpus(read_lines(path), str(path), max_length, **options)


def text_preset(base: Preset, vocab: Vocabulary, length: int) -> Preset:
    """``base`` sized for a corpus: its vocabulary, its length, the special tokens; D's
    windows longer than the sequences are left out."""
    disc = base.discriminator
    windows = [(k, n) for k, n in zip(disc.filter_sizes, disc.num_filters) if k <= length]
    disc = dataclasses.replace(disc, filter_sizes=tuple(k for k, _ in windows), num_filters=tuple(n for _, n in windows))
    return base.replace(vocab_size=vocab.size, seq_len=length, start_token=BOS, eos_token=EOS, discriminator=disc)
