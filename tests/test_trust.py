"""No file the project reads runs code: oracle pickles, SB3 state in run folders and agent files."""

from __future__ import annotations

import builtins
import os
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

from seqgan_env.checkpoint import save_model
from seqgan_env.models import Generator, Oracle
from seqgan_env.models.lstm import ORACLE_ARRAY_NAMES, ForbiddenPickleError
from train.cli import main


class _RunsCommand:
    """Unpickling this calls ``function(argument)``: what a crafted oracle file would do."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


def evil_pickles(marker):
    """Pickles that create ``marker`` when unpickled by ``pickle.load``, alone or inside a list of arrays."""
    command = _RunsCommand(os.system, f"touch {marker}")
    code = _RunsCommand(builtins.exec, f"open({str(marker)!r}, 'w').close()")
    arrays = [np.zeros(2, np.float32)] * 14
    return [
        ("posix.system", pickle.dumps(command, protocol=2)),
        ("builtins.exec", pickle.dumps(code, protocol=pickle.HIGHEST_PROTOCOL)),
        ("posix.system", pickle.dumps(arrays + [command], protocol=2)),  # hidden among arrays
    ]


def test_the_evil_pickles_do_run_code_under_plain_pickle(tmp_path):
    """The fixture is real: ``pickle.loads`` of each file creates the marker."""
    for number, data in enumerate(data for _, data in evil_pickles(tmp_path / "m")):
        marker = tmp_path / "m"
        pickle.loads(data)
        assert marker.exists(), number
        marker.unlink()


def test_an_oracle_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    for forbidden, data in evil_pickles(marker):
        path = tmp_path / "evil.pkl"
        path.write_bytes(data)
        with pytest.raises(ForbiddenPickleError, match=forbidden.replace(".", r"\.")) as info:
            Oracle.load(path)
        assert str(path) in str(info.value) and "only NumPy arrays" in str(info.value)
        with pytest.raises(ForbiddenPickleError):
            gym.make("SeqGAN-v0", preset="tiny", reward="oracle", oracle=str(path))
        assert not marker.exists(), f"{forbidden} ran"


def test_seqgan_evaluate_refuses_an_evil_oracle(tiny, tmp_path, capsys):
    marker = tmp_path / "ran"
    torch.manual_seed(0)
    save_model(Generator.from_preset(tiny), tmp_path / "g.pt")
    for forbidden, data in evil_pickles(marker):
        (tmp_path / "evil.pkl").write_bytes(data)
        code = main(["evaluate", "--checkpoint", str(tmp_path / "g.pt"), "--oracle", str(tmp_path / "evil.pkl"),
                     "--preset", "tiny", "--num", "10"])
        assert code == 2
        error = capsys.readouterr().err
        assert f"asks for {forbidden}" in error and "evil.pkl" in error
        assert not marker.exists(), f"{forbidden} ran"


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("container", [list, tuple])
def test_a_genuine_oracle_pickle_still_loads(tiny, tmp_path, protocol, container):
    oracle = Oracle.from_preset(tiny)
    arrays = oracle.to_arrays()
    (tmp_path / "o.pkl").write_bytes(pickle.dumps(container(arrays[n] for n in ORACLE_ARRAY_NAMES),
                                                  protocol=protocol))
    loaded = Oracle.load(tmp_path / "o.pkl", seq_len=tiny.seq_len)
    for name, value in loaded.to_arrays().items():
        np.testing.assert_array_equal(value, arrays[name], err_msg=name)
    sequences = oracle.sample(50, torch.Generator().manual_seed(0))
    assert loaded.nll(sequences) == pytest.approx(oracle.nll(sequences), rel=1e-6)
