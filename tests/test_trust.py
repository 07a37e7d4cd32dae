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
from seqgan_env.models.oracle import ORACLE_ARRAY_NAMES, ForbiddenPickleError
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


# -- SB3 models: saved as tensors and plain data, never through cloudpickle ---------------------


def sb3_envs(models, num_envs=8):
    return gym.make_vec("SeqGAN-v0", num_envs=num_envs, preset="tiny", discriminator=models["discriminator"],
                        rollout_policy=models["generator"], num_rollouts=2, compute_dtype="float32")


@pytest.fixture
def no_sb3_archives(monkeypatch):
    """Every way SB3 reads its own archives (a zip with cloudpickled settings) raises."""
    import cloudpickle
    from stable_baselines3.common import base_class, save_util

    def refuse(*args, **kwargs):
        raise AssertionError("an SB3 archive was unpickled")

    for owner, name in ((cloudpickle, "loads"), (cloudpickle, "load"), (save_util, "load_from_zip_file"),
                        (base_class, "load_from_zip_file")):
        monkeypatch.setattr(owner, name, refuse)
    monkeypatch.setattr(base_class.BaseAlgorithm, "load", classmethod(refuse))


def one_rollout(model, seed):
    """One rollout and update from an env reset with ``seed`` (what the pipeline's SB3 step does)."""
    model.env.seed(seed)
    model._last_obs = None
    model.learn(model.n_envs * model.n_steps, reset_num_timesteps=False)


def evil_sb3_archive(path, marker):
    """An SB3 zip whose settings, cloudpickled as SB3 does, run a command when SB3 loads them."""
    from stable_baselines3.common.save_util import save_to_zip_file

    save_to_zip_file(path, data={"policy_class": _RunsCommand(os.system, f"touch {marker}")})


@pytest.mark.parametrize("make", ["make_ppo", "make_a2c"])
def test_sb3_agent_saves_plain_data_and_continues_exactly(tiny_models, tmp_path, make, no_sb3_archives):
    from agents import sb3

    model = getattr(sb3, make)(sb3_envs(tiny_models), generator=tiny_models["generator"], seed=0)
    one_rollout(model, seed=1)
    sb3.SB3Agent(model).save(tmp_path / "agent.pt")
    saved = torch.load(tmp_path / "agent.pt", weights_only=True)  # nothing but tensors and plain data
    assert saved["kind"] == "sb3-agent" and saved["algorithm"] == make[5:]
    assert not any(isinstance(v, bytes) for v in saved.values())
    one_rollout(model, seed=2)
    loaded = sb3.SB3Agent.load(tmp_path / "agent.pt", env=sb3_envs(tiny_models)).model
    assert type(loaded) is type(model) and loaded.num_timesteps == saved["counters"]["num_timesteps"]
    one_rollout(loaded, seed=2)  # the same update as the original's second one, random states included
    for (name, mine), theirs in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values()):
        assert torch.equal(mine, theirs), name
    assert loaded.num_timesteps == model.num_timesteps and loaded._n_updates == model._n_updates
    acting = sb3.SB3Agent.load(tmp_path / "agent.pt")  # no env: acting only
    observations = np.full((3, 8), 64)
    assert acting.act(observations).shape == (3,)


def test_a_tampered_sb3_agent_file_is_refused_unread(tiny_models, tmp_path):
    from agents.sb3 import SB3Agent, make_ppo
    from seqgan_env.checkpoint import CheckpointError

    marker = tmp_path / "ran"
    SB3Agent(make_ppo(sb3_envs(tiny_models), seed=0)).save(tmp_path / "agent.pt")
    payload = torch.load(tmp_path / "agent.pt", weights_only=True)
    payload["policy_kwargs"] = _RunsCommand(os.system, f"touch {marker}")
    torch.save(payload, tmp_path / "agent.pt")  # torch.save pickles anything
    with pytest.raises(CheckpointError, match=r"holds pickled Python objects.*posix\.system"):
        SB3Agent.load(tmp_path / "agent.pt")
    evil_sb3_archive(tmp_path / "sb3.zip", marker)  # SB3's own format is not read at all
    with pytest.raises(CheckpointError, match="not a torch file|not a seqgan-env checkpoint"):
        SB3Agent.load(tmp_path / "sb3.zip")
    assert not marker.exists()


def test_the_evil_sb3_archive_does_run_code_under_sb3s_own_load(tmp_path):
    """The fixture is real: SB3's ``PPO.load`` runs it."""
    from stable_baselines3 import PPO

    evil_sb3_archive(tmp_path / "sb3.zip", tmp_path / "ran")
    with pytest.raises(Exception):
        PPO.load(tmp_path / "sb3.zip")
    assert (tmp_path / "ran").exists()


def test_schedules_that_vary_cannot_be_saved_as_data(tiny_models, tmp_path):
    from agents.sb3 import SB3Agent, make_ppo

    model = make_ppo(sb3_envs(tiny_models), seed=0, learning_rate=lambda progress: 1e-3 * progress)
    with pytest.raises(ValueError, match="learning_rate is a schedule that changes"):
        SB3Agent(model).save(tmp_path / "agent.pt")
    assert not (tmp_path / "agent.pt").exists()
