"""``seqgan oracle fetch``: the paper's oracle converted from the original pickle, its hash checked,
a clear message offline, and ``oracle="paper"`` reading the converted file.

The real download needs the network; here the pickle is rebuilt from ``../shared/oracle``'s
arrays in the original file's order (a list of 15 arrays) and the download is replaced."""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from seqgan_env import paper_oracle
from seqgan_env.factory import resolve_oracle
from seqgan_env.models.oracle import ORACLE_ARRAY_NAMES
from seqgan_env.presets import get_preset
from train.cli import main


@pytest.fixture
def original_pickle(paper_oracle_path, tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A pickle laid out as the original ``target_params_py3.pkl``, and the arrays it holds."""
    with np.load(paper_oracle_path) as data:
        arrays = {name: data[name] for name in data.files}
    path = tmp_path / "target_params_py3.pkl"
    path.write_bytes(pickle.dumps([arrays[name] for name in ORACLE_ARRAY_NAMES]))
    return path, arrays


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv(paper_oracle.ENV_VAR, str(folder))
    return folder


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_converted_file_holds_the_same_weights(original_pickle, tmp_path):
    path, arrays = original_pickle
    out = paper_oracle.convert(path, tmp_path / "converted.npz", expected_sha256=digest(path))
    with np.load(out) as converted:
        assert sorted(converted.files) == sorted(ORACLE_ARRAY_NAMES)
        for name in ORACLE_ARRAY_NAMES:
            np.testing.assert_array_equal(converted[name], arrays[name], err_msg=name)


def test_a_file_with_another_hash_is_refused_and_nothing_written(original_pickle, tmp_path):
    path, _ = original_pickle
    damaged = tmp_path / "damaged.pkl"
    damaged.write_bytes(path.read_bytes()[:-1] + b"\x00")  # one byte changed
    out = tmp_path / "converted.npz"
    with pytest.raises(paper_oracle.OracleFetchError, match="SHA-256"):
        paper_oracle.convert(damaged, out, expected_sha256=digest(path))
    with pytest.raises(paper_oracle.OracleFetchError, match=paper_oracle.SHA256):
        paper_oracle.convert(path, out)  # by default the pinned hash of the original file
    assert not out.exists()


def test_fetch_from_a_downloaded_file_writes_the_default_location(original_pickle, data_dir, monkeypatch, capsys):
    path, arrays = original_pickle
    monkeypatch.setattr(paper_oracle, "SHA256", digest(path))
    assert main(["oracle", "fetch", "--from", str(path)]) == 0
    assert paper_oracle.default_path() == data_dir / paper_oracle.FILE_NAME
    assert str(data_dir / paper_oracle.FILE_NAME) in capsys.readouterr().out
    oracle = resolve_oracle("paper", get_preset("paper"))  # what --oracle paper reads
    np.testing.assert_array_equal(oracle.to_arrays()["W_out"], arrays["W_out"])


def test_the_download_is_checked_and_converted(original_pickle, data_dir, monkeypatch):
    path, _ = original_pickle
    monkeypatch.setattr(paper_oracle, "SHA256", digest(path))
    urls = []

    def download(url: str, target: Path) -> None:
        urls.append(url)
        target.write_bytes(path.read_bytes())

    monkeypatch.setattr(paper_oracle, "download", download)
    assert main(["oracle", "fetch"]) == 0
    assert urls == [paper_oracle.URL] and paper_oracle.COMMIT in urls[0]
    assert (data_dir / paper_oracle.FILE_NAME).is_file()
    assert [p.name for p in data_dir.iterdir()] == [paper_oracle.FILE_NAME]  # the download was not left behind


def test_offline_it_says_what_to_download_and_where(data_dir, monkeypatch, capsys):
    def no_network(url: str, target: Path) -> None:
        raise urllib.error.URLError("name resolution failed")

    monkeypatch.setattr(paper_oracle, "download", no_network)
    assert main(["oracle", "fetch"]) == 2
    message = capsys.readouterr().err
    assert paper_oracle.URL in message and paper_oracle.SHA256 in message
    assert "--from" in message and str(data_dir / paper_oracle.FILE_NAME) in message
    assert not (data_dir / paper_oracle.FILE_NAME).exists()


def test_oracle_paper_without_the_file_names_the_command(data_dir):
    with pytest.raises(FileNotFoundError, match="seqgan oracle fetch"):
        resolve_oracle("paper", get_preset("paper"))


def test_the_default_location_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(paper_oracle.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paper_oracle.default_path() == tmp_path / "seqgan-env" / paper_oracle.FILE_NAME


def test_a_comparison_ships_the_fetched_file_to_its_workers(original_pickle, data_dir, monkeypatch, tmp_path):
    # a worker on another node has no ~/.cache of its own: "paper" travels as the file's bytes
    from train.experiments.transport import pack_inputs

    path, _ = original_pickle
    monkeypatch.setattr(paper_oracle, "SHA256", digest(path))
    fetched = paper_oracle.fetch(source=path)
    base = tmp_path / "base"
    base.mkdir()
    (base / "generator.pt").write_bytes(b"a generator")
    inputs = pack_inputs(base, "paper")
    assert inputs["oracle"] is None
    assert inputs["oracle_file"] == {"suffix": ".npz", "data": fetched.read_bytes()}
