"""Write the published tables and figures into the README and the docs from ``results/``.

A page holds a rendered block between two markers::

    <!-- results: NAME -->
    ... (written by this command from benchmarks/templates/NAME.md.j2) ...
    <!-- /results -->

Each template is Jinja2 (the templating mkdocs already brings) and reads the result files as
``results.<study>.<name>`` (see :mod:`benchmarks.results`); text outside the markers is left
alone. ``--check`` writes nothing and fails, naming the pages, where a page differs from what
the files say (tests/test_render_docs.py runs it).

    python -m benchmarks.render_docs            # rewrite the blocks
    python -m benchmarks.render_docs --check    # exit 1 if a page is out of date
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import jinja2

from benchmarks.results import RESULTS, ROOT, load_all

TEMPLATES = Path(__file__).resolve().parent / "templates"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def pages(root: Path | None = None) -> list[Path]:
    """The pages that may hold rendered blocks: the root's Markdown files and docs/*.md."""
    root = root or ROOT
    return [*sorted(root.glob("*.md")), *sorted((root / "docs").glob("*.md"))]


def number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, halves rounded up as a reader would (``n/a`` for None)."""
    if value is None:
        return "n/a"
    quantum = Decimal(1).scaleb(-digits)
    rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{rounded:,}" if abs(rounded) >= 1_000 else str(rounded)


def signed(value: Any, digits: int = 3) -> str:
    """:func:`number` with its sign, ``+`` included."""
    text = number(value, digits)
    return text if text.startswith("-") or text == "n/a" else f"+{text}"


def sci(value: float, digits: int = 0) -> str:
    """Powers of ten with ``digits`` decimals in the mantissa, as ``1e-25`` or ``2.5e-3`` (no padded exponent)."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def span(values: list[Any], digits: int = 3, dash: str = "-") -> str:
    """``low-high`` of a list of numbers (one number when they round alike)."""
    low, high = number(min(values), digits), number(max(values), digits)
    return low if low == high else f"{low}{dash}{high}"


def source(result: dict[str, Any]) -> str:
    """One line on where a result file's figures come from."""
    if result["provenance"] == "measured":
        return f"measured by code version {result['code_version']} on {result['date']}"
    return (f"transcribed from code version {result['code_version']}, {result['date']}; "
            "the raw run output was not kept")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
                             autoescape=False)
    env.filters.update(number=number, signed=signed, sci=sci, span=span, source=source)
    return env


def render_page(text: str, results: dict[str, Any], env: jinja2.Environment, where: str = "page") -> str:
    """``text`` with every block re-rendered from ``results``."""
    def block(match: re.Match[str]) -> str:
        name = match["name"]
        try:
            template = env.get_template(f"{name}.md.j2")
        except jinja2.TemplateNotFound:
            raise ValueError(f"{where}: no template benchmarks/templates/{name}.md.j2 for its results block") from None
        body = template.render(results=results).strip("\n")
        return f"{match.group(1)}{body}\n{match.group(4)}"

    return BLOCK.sub(block, text)


def render(root: Path | None = None, results_root: Path | None = None) -> dict[Path, tuple[str, str]]:
    """``{page: (current text, rendered text)}`` for every page with a results block (default: this
    checkout's pages and ``results/``)."""
    root = root or ROOT
    results, env, out = load_all(results_root or RESULTS), environment(), {}
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        if BLOCK.search(text):
            out[page] = (text, render_page(text, results, env, where=str(page.relative_to(root))))
    return out


def stale(root: Path | None = None, results_root: Path | None = None) -> list[str]:
    """A unified diff for each page that differs from what the result files say (empty: all in date)."""
    root = root or ROOT
    diffs = []
    for page, (current, rendered) in render(root, results_root).items():
        if current != rendered:
            name = str(page.relative_to(root))
            diffs.append("".join(difflib.unified_diff(current.splitlines(True), rendered.splitlines(True),
                                                      f"{name} (now)", f"{name} (from results/)")))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    if args.check:
        diffs = stale()
        if diffs:
            sys.stdout.write("\n".join(diffs))
            print(f"\n{len(diffs)} page(s) differ from results/: run python -m benchmarks.render_docs")
            return 1
        print("every results block matches results/")
        return 0
    for page, (current, rendered) in render().items():
        if current != rendered:
            page.write_text(rendered, encoding="utf-8")
            print(f"rewrote {page.relative_to(ROOT)}")
    print("the pages now match results/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
