"""``mkdocs build --strict`` builds the documentation site: README, docs/*.md and the API
reference generated from the docstrings. A broken link or reference fails the build."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the dev extra: pip install -e '.[dev]'")
    pytest.importorskip("material", reason="mkdocs-material is in the dev extra: pip install -e '.[dev]'")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is in the dev extra")
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    home = (site / "index.html").read_text()
    assert "What the comparison found" in home and 'href="comparing/' in home  # the README, its links into docs/ rewritten
    assert 'href="contributing/' in home and 'href="changelog/' in home  # and its links to the root's other pages
    api = (site / "api" / "agents" / "index.html").read_text()
    assert "ReinforceAgent" in api and "The paper's policy-gradient generator" in api  # from the docstrings
    assert (site / "tutorial.ipynb").is_file() and (site / "exercises" / "index.html").is_file()


def test_every_page_the_readme_mentions_is_in_its_documentation_table():
    import re

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Documentation"):]
    table = table[:table.index("\n\n", table.index("| page |"))]
    mentioned = set(re.findall(r"\]\(((?:docs/)?[\w/.-]+\.md)(?:#[\w-]*)?\)", readme))
    listed = set(re.findall(r"\]\(((?:docs/)?[\w/.-]+\.md)\)", table))
    assert mentioned - listed == set(), f"pages the README links to but its documentation table lacks: {mentioned - listed}"
    for page in mentioned:
        assert (REPO / page).is_file(), page
