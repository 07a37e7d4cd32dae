"""Experiments on a cluster whose nodes share no disk: trials read only what Ray carries to them.

The slow test starts a real two-node Ray cluster on this machine: a head with no CPU (the
driver's node) and a worker node with 2 CPUs in its own mount namespace, with an empty tmpfs
over the results folder's parent, so its trials cannot see the driver's files (as a cloud VM
or a Kubernetes pod could not). The cluster is separate from the suite's own Ray
(``ray_local``): its own temporary folder and ports, its processes ended by their ids.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from train.experiments.config import get_compare_config
from train.experiments.runner import RESULT_KEY, compare_trial
from train.experiments.runs import RunSpec
from train.experiments.transport import pack_inputs
from train.experiments.tune_engine import (
    check_address,
    check_cluster_fits,
    is_trusted_state,
    record_trusted_state,
    run_experiment,
)

SEQGAN = [sys.executable, "-m", "train.cli"]
COMPARISON = ["compare", "--preset", "tiny", "--seeds", "1", "--algos", "reinforce", "--settings", "fixed",
              "--rewards", "monte_carlo", "--baselines", "constant", "--threads", "1"]


def _tiny_base(root: Path):
    from seqgan_env.factory import resolve_oracle
    from seqgan_env.presets import get_preset
    from train.config import get_train_config
    from train.experiments.base import prepare_base

    config = get_compare_config("tiny")
    config.seeds, config.algos, config.settings, config.rewards = (0,), ("reinforce",), ("fixed",), ("monte_carlo",)
    oracle = resolve_oracle(None, get_preset(get_train_config(config.base_preset).model_preset))
    prepare_base(root, config, oracle, progress=False)
    return config


def test_a_trial_reads_only_its_inputs_and_writes_nothing(tmp_path, monkeypatch):
    """A comparison trial given its inputs runs with the results folder gone and a working folder
    it may not write to: its result comes back in its last report, and no file appears."""
    from ray import tune

    root = tmp_path / "cmp"
    config = _tiny_base(root)
    inputs = pack_inputs(root / "base", None)
    shutil.rmtree(root)  # what a node without the driver's disk sees
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    reports = []
    monkeypatch.setattr(tune, "report", reports.append)
    run = RunSpec("fixed", "reinforce", "monte_carlo", 0)
    compare_trial({"trial": {"job": list(run.job), "config": config.to_dict(), "threads": 1}}, inputs)
    result = json.loads(reports[-1][RESULT_KEY])
    assert (result["setting"], result["name"], result["seed"]) == run.job
    assert result["tokens"] >= config.token_budget and len(reports) == config.evaluations + 2
    assert not root.exists() and not list(work.iterdir())


def test_packed_inputs_hold_only_plain_file_names(tmp_path):
    from train.experiments.transport import unpacked

    with pytest.raises(ValueError, match="unexpected file name"):
        with unpacked({"base": {"../generator.pt": b""}, "oracle_file": None, "oracle": None}):
            pass
    with pytest.raises(FileNotFoundError, match="no generator.pt"):
        pack_inputs(tmp_path, None)


def test_a_cluster_without_room_for_a_trial_fails_in_seconds(ray_local):
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"each trial asks for 1 CPU, 1 GPU.*has 2 CPU in all"):
        check_cluster_fits({"cpu": 1, "gpu": 1}, wait=1)
    with pytest.raises(RuntimeError, match=r"asks for 3 CPU"):
        run_experiment(_square, [{"x": 1.0}], Path(tempfile.mkdtemp()), {"cpu": 3}, progress=False)
    assert time.monotonic() - started < 30
    check_cluster_fits({"cpu": 1}, wait=0)  # fits: no error


def _square(trial_config):
    from ray import tune

    tune.report({"y": trial_config["trial"]["x"] ** 2})


REPORTED: list[tuple[dict, dict]] = []


def _collect(trial, result):
    REPORTED.append((trial, result))


def test_each_report_reaches_the_driver_as_it_is_made(tmp_path, ray_local):
    """The driver's hook (which writes a comparison's result files) sees every report, in this process."""
    REPORTED.clear()
    run_experiment(_square, [{"x": 2.0}, {"x": 3.0}], tmp_path / "state", {"cpu": 1}, progress=False,
                   on_result=_collect)
    assert sorted((trial["x"], result["y"]) for trial, result in REPORTED) == [(2.0, 4.0), (3.0, 9.0)]


def test_ray_client_addresses_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"Ray Client \(ray://\) addresses are not supported.*HOST:PORT"):
        check_address("ray://127.0.0.1:10001")


def test_storage_uri_keeps_tune_state_and_its_trust_record(tmp_path, ray_local):
    """``--storage file:///...`` goes through pyarrow's filesystem: sessions, Tune's state, the digest."""
    storage = f"file://{tmp_path}/state"
    session = run_experiment(_square, [{"x": 3.0}], storage, {"cpu": 1}, progress=False)
    assert [o.metrics["y"] for o in session.outcomes] == [9.0]
    assert json.loads((tmp_path / "state" / "sessions.json").read_text())["latest"] == "run-1"
    experiment = f"{storage}/run-1"
    assert is_trusted_state(experiment)
    record_trusted_state(experiment)
    (tmp_path / "state" / "run-1" / "extra.pkl").write_bytes(b"not ours")
    assert not is_trusted_state(experiment), "a file added to the remote state must void the trust"


# -- a two-node cluster without a shared disk ------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _private_mounts_work(target: Path) -> str | None:
    """Why a private mount namespace with a tmpfs cannot be made here (``None``: it can)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "needs Linux's unshare"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            f"mount -t tmpfs tmpfs {target} && test -z \"$(ls -A {target})\""],
                           capture_output=True, text=True, timeout=30)
    return None if probe.returncode == 0 else f"unshare/mount not permitted: {probe.stderr.strip()[:200]}"


def _stop(process: subprocess.Popen) -> None:
    """End a node we started: its process group (``ray start --block`` and the node's processes)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    with __import__("contextlib").suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group outlived its leader


def _table(out: Path) -> list[dict[str, str]]:
    """results.csv without the columns that measure time."""
    return [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(open(out / "results.csv"))]


@pytest.mark.slow
def test_a_comparison_on_a_cluster_without_shared_disk_matches_a_local_one(tmp_path):
    parent = tmp_path / "results"
    parent.mkdir()
    reason = _private_mounts_work(parent)
    if reason:
        pytest.skip(reason)
    timings = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", PYTHONPATH=str(REPO), SEQGAN_ENV_RESOURCE_WAIT="3")
    local, remote = parent / "local", parent / "cluster"

    started = time.monotonic()
    subprocess.run([*SEQGAN, *COMPARISON, "--out", str(local), "--cpus", "2"], env=env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=600)
    timings["local comparison"] = time.monotonic() - started
    remote.mkdir()  # the same base and settings: only the runs go to the cluster
    shutil.copytree(local / "base", remote / "base")
    shutil.copy(local / "compare.json", remote / "compare.json")

    port = _free_port()
    ray_temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths must stay short
    ray = str(Path(sys.executable).with_name("ray"))
    nodes = []
    try:
        started = time.monotonic()
        nodes.append(subprocess.Popen(
            [ray, "start", "--head", "--block", "--num-cpus=0", f"--port={port}", "--include-dashboard=false",
             f"--temp-dir={ray_temp}", "--node-ip-address=127.0.0.1"],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while subprocess.run([ray, "status", f"--address={address}"], env=env, capture_output=True).returncode:
            assert time.monotonic() < deadline and nodes[0].poll() is None, "the head node did not start"
            time.sleep(1)
        timings["head up"] = time.monotonic() - started

        # A head without CPUs cannot run a trial: an error in seconds, not an endless wait.
        started = time.monotonic()
        refused = subprocess.run([*SEQGAN, *COMPARISON, "--out", str(parent / "refused"), "--address", address],
                                 env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        timings["refused without a worker"] = time.monotonic() - started
        assert refused.returncode != 0 and "each trial asks for 1 CPU" in refused.stderr + refused.stdout
        assert not (parent / "refused" / "base" / "generator.pt").exists(), "refused only after training the base"

        started = time.monotonic()
        nodes.append(subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs tmpfs {parent} && exec {ray} start --block --address={address} --num-cpus=2 "
             "--node-ip-address=127.0.0.1"],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        probe = "import ray; ray.init(address='{}', log_to_driver=False); print(ray.cluster_resources().get('CPU', 0))"
        while True:
            out = subprocess.run([sys.executable, "-c", probe.format(address)], env=env, capture_output=True, text=True)
            if out.stdout.strip().endswith("2.0"):
                break
            assert time.monotonic() - started < 90 and nodes[1].poll() is None, "the worker node did not join"
            time.sleep(1)
        timings["worker up"] = time.monotonic() - started

        started = time.monotonic()
        done = subprocess.run([*SEQGAN, *COMPARISON, "--out", str(remote), "--address", address], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
        timings["cluster comparison"] = time.monotonic() - started
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(ray_temp, ignore_errors=True)
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert json.loads((remote / "failures.json").read_text()) == {}
    table = _table(remote)
    assert table and all(row["status"] == "ok" for row in table)
    assert table == _table(local), "the cluster's table differs from the local run's with the same seeds"
