"""mkdocs hooks: the README and the changelog, which live at the repository root, as site pages.

``docs/index.md`` and ``docs/changelog.md`` are placeholders; their content is the root file,
with links that point into ``docs/`` rewritten to be relative to the site.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"index.md": "README.md", "changelog.md": "CHANGELOG.md", "contributing.md": "CONTRIBUTING.md"}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    source = SOURCES.get(page.file.src_uri)
    if source is None:
        return markdown
    text = (ROOT / source).read_text(encoding="utf-8")
    # Links into docs/ from the root become links within the site; other repository files
    # (code, LICENSE) are not pages of the site, so they are shown as code names.
    text = re.sub(r"\]\(docs/", "](", text)
    for root_file, site_page in (("README.md", "index.md"), *((s, p) for p, s in SOURCES.items())):
        text = text.replace(f"]({root_file})", f"]({site_page})")
    return re.sub(r"\[([^\]]+)\]\((?!https?://|#)([^)]+\.(?:py|txt|cfg|toml))\)", r"`\2`", text)
