"""``seqgan compare`` as a Ray Tune experiment: trials, metrics while running, resume, failures, --address."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import time

import pytest
from ray import tune

from agents.reinforce import ReinforceAgent
from train.cli import main
from train.experiments.config import get_compare_config
from train.experiments.reporting import D_METRICS, METRICS, STATISTICS_COLUMNS

pytestmark = pytest.mark.usefixtures("ray_local")

# Every evaluation also measures D on held-out data, so its columns follow the generator's metrics.
TABLE_COLUMNS = ["setting", "method", "seeds"] + [k for key, _ in (*METRICS, *D_METRICS) for k in (key, f"{key}_ci")]


class BrokenAgent(ReinforceAgent):
    """REINFORCE that fails at its first update, as a buggy user agent would."""

    def learn(self, batch):
        raise RuntimeError("this agent is broken on purpose")


def broken_agent(generator, envs, seed):
    return BrokenAgent(generator, seed=seed)


class KilledAgent(ReinforceAgent):
    """REINFORCE whose worker process is killed at its first update (out of memory, a node lost)."""

    def learn(self, batch):
        os.kill(os.getpid(), signal.SIGKILL)


def killed_agent(generator, envs, seed):
    return KilledAgent(generator, seed=seed)


class InterruptAfterFirstResult(tune.Stopper):
    """Interrupts the Tune session as Ctrl-C would (SIGUSR1, Tune's other interrupt signal)
    as soon as one trial has written its result."""

    def __init__(self) -> None:
        self.sent = False

    def __call__(self, trial_id, result) -> bool:
        if result.get("result_written") and not self.sent:
            self.sent = True
            signal.raise_signal(signal.SIGUSR1)
        return False

    def stop_all(self) -> bool:
        return False


def _argv(out, *extra):
    return ["compare", "--preset", "tiny", "--out", str(out), "--baselines", "", "--rewards", "monte_carlo", *extra]


def test_comparison_runs_as_tune_trials_and_resumes(tmp_path):
    from seqgan_env.factory import resolve_oracle
    from seqgan_env.presets import get_preset
    from train.config import get_train_config
    from train.experiments.comparison import compare

    out = tmp_path / "cmp"
    config = get_compare_config("tiny")
    config.algos, config.settings, config.baselines = ("reinforce", "rllib-ppo"), ("adversarial",), ()
    config.rewards = ("monte_carlo",)
    oracle = resolve_oracle(None, get_preset(get_train_config(config.base_preset).model_preset))
    # First session: interrupted once the first run has finished.
    compare(out, config, oracle, None, progress=False, stop=InterruptAfterFirstResult())
    results = sorted((out / "runs").rglob("seed*.json"))
    assert 1 <= len(results) < 4, "the stop condition interrupts the session before all four runs"
    first = {p: p.stat().st_mtime_ns for p in results}
    sessions = json.loads((out / "tune" / "sessions.json").read_text())
    assert sessions == {"latest": "run-1", "finished": False, "count": 1}

    # Again: Tune restores run-1; finished runs are not run again, the others are, in run-1.
    compare(out, config, oracle, None, progress=False)
    results = sorted((out / "runs").rglob("seed*.json"))
    assert len(results) == 4
    assert all(p.stat().st_mtime_ns == t for p, t in first.items()), "a finished trial was run again"
    assert json.loads((out / "tune" / "sessions.json").read_text()) == {"latest": "run-1", "finished": True,
                                                                         "count": 1}

    # Metrics reached Tune while each run went: every evaluation as it was made, then the end.
    for trial in (out / "tune" / "run-1").glob("adversarial_*_seed*"):
        reports = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert reports[-1]["result_written"] == 1
        evaluations = sorted({r["tokens"] for r in reports if "result_written" not in r})
        assert len(evaluations) == config.evaluations + 1 and evaluations[0] == 0
        assert evaluations[-1] >= config.token_budget

    # The table: the columns it always had, the robust statistics, then the run status.
    rows = list(csv.DictReader(open(out / "results.csv")))
    columns = list(rows[0].keys())
    assert columns[:len(TABLE_COLUMNS)] == TABLE_COLUMNS and columns[-2:] == ["status", "error"]
    assert columns[len(TABLE_COLUMNS):len(TABLE_COLUMNS) + len(STATISTICS_COLUMNS)] == list(STATISTICS_COLUMNS)
    by_method = {r["method"]: r for r in rows}
    assert by_method["rllib-ppo"]["status"] == "ok" and by_method["rllib-ppo"]["seeds"] == "2"
    rllib = [json.loads(p.read_text()) for p in (out / "runs" / "adversarial" / "rllib-ppo").glob("*.json")]
    for run in rllib:  # the same budget and base as the others
        assert config.token_budget <= run["tokens"] < config.token_budget + config.batch_size * 8
        assert run["curve"][0]["nll_test"] == pytest.approx(json.loads(results[0].read_text())["curve"][0]["nll_test"])
        # The evaluated generator is the one PPO trained (the same evaluation seed every time).
        # (No direction is expected of PPO on D's reward in this budget; the same seeded
        # evaluation makes a difference beyond float noise the training's.)
        assert abs(run["curve"][-1]["entropy"] - run["curve"][0]["entropy"]) > 1e-4


def test_a_failing_trial_is_reported_and_the_others_finish(tmp_path, monkeypatch):
    from seqgan_env.models import Oracle
    from seqgan_env.presets import get_preset

    # An oracle given by a path relative to where the command runs (trials run elsewhere).
    Oracle.from_preset(get_preset("tiny").replace(oracle_seed=5)).save_npz(tmp_path / "oracle.npz")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cmp"
    argv = _argv(out, "--algos", "reinforce", "--agent", "tests.test_tune:broken_agent", "--seeds", "1",
                 "--settings", "fixed", "--oracle", "oracle.npz")
    assert main(argv) == 0
    rows = {r["method"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows["reinforce"]["status"] == "ok" and rows["reinforce"]["nll_oracle"] != ""
    broken = rows["tests.test_tune:broken_agent"]
    assert broken["status"] == "1 of 1 failed" and broken["seeds"] == "0"
    assert "broken on purpose" in broken["error"] and broken["nll_oracle"] == ""
    assert "broken on purpose" in (out / "results.md").read_text()
    assert list(json.loads((out / "failures.json").read_text())) == ["fixed/tests.test_tune:broken_agent/seed0"]


def test_an_address_where_nothing_listens_fails_within_seconds(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.time()
    assert main(_argv(tmp_path / "cmp", "--address", f"127.0.0.1:{port}")) == 2
    assert time.time() - started < 10
    err = capsys.readouterr().err
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in err
    assert not (tmp_path / "cmp" / "base").exists(), "it failed before pretraining anything"
    assert main(_argv(tmp_path / "cmp", "--address", "nonsense")) == 2
    assert "is not HOST:PORT" in capsys.readouterr().err


def square_trial(config):
    tune.report({"score": config["trial"]["x"] ** 2})


def test_a_search_algorithm_plugs_into_the_engine(tmp_path):
    from ray.tune.search import BasicVariantGenerator

    from train.experiments.tune_engine import run_experiment

    space = {"x": tune.uniform(-1.0, 1.0)}
    session = run_experiment(square_trial, [space], tmp_path / "search", {"cpu": 1}, progress=False,
                             search_alg=BasicVariantGenerator(random_state=0), num_samples=3, metric="score", mode="min")
    assert len(session.outcomes) == 3 and session.finished and not session.restored
    for outcome in session.outcomes:
        assert outcome.error is None and outcome.metrics["score"] == pytest.approx(outcome.config["x"] ** 2)


def test_only_a_state_this_user_recorded_is_trusted(tmp_path):
    from train.experiments.tune_engine import is_trusted_state, record_trusted_state

    experiment = tmp_path / "run-1"
    experiment.mkdir()
    (experiment / "tuner.pkl").write_bytes(b"state")
    assert not is_trusted_state(experiment), "a folder from elsewhere is not trusted"
    record_trusted_state(experiment)
    assert is_trusted_state(experiment)
    (experiment / "tuner.pkl").write_bytes(b"other state")  # changed since it was recorded
    assert not is_trusted_state(experiment)


def test_a_killed_worker_is_reported_as_failed_and_the_others_finish(tmp_path):
    out = tmp_path / "cmp"
    argv = _argv(out, "--algos", "reinforce", "--agent", "tests.test_tune:killed_agent", "--seeds", "1",
                 "--settings", "fixed")
    assert main(argv) == 0
    rows = {r["method"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert rows["reinforce"]["status"] == "ok" and rows["reinforce"]["nll_oracle"] != ""
    killed = rows["tests.test_tune:killed_agent"]
    assert killed["status"] == "1 of 1 failed" and killed["seeds"] == "0" and killed["nll_oracle"] == ""
    assert killed["error"], "the row names the error that ended the run"
    assert list(json.loads((out / "failures.json").read_text())) == ["fixed/tests.test_tune:killed_agent/seed0"]


def test_a_received_tune_state_is_never_unpickled(tmp_path):
    """A results folder from elsewhere whose latest session looks unfinished, with a crafted
    ``tuner.pkl`` (Tune restores by unpickling it): a new session runs instead, and no code runs."""
    import pickle

    from tests.test_trust import _RunsCommand
    from train.experiments.tune_engine import run_experiment

    marker = tmp_path / "ran"
    storage = tmp_path / "search"
    (storage / "run-1").mkdir(parents=True)
    (storage / "run-1" / "tuner.pkl").write_bytes(pickle.dumps(_RunsCommand(os.system, f"touch {marker}")))
    (storage / "sessions.json").write_text(json.dumps({"latest": "run-1", "finished": False, "count": 1}))
    assert tune.Tuner.can_restore(str(storage / "run-1")), "Tune itself would restore (unpickle) this folder"
    session = run_experiment(square_trial, [{"x": 0.5}], storage, {"cpu": 1}, progress=False)
    assert not marker.exists()
    assert not session.restored and session.finished and len(session.outcomes) == 1
    assert json.loads((storage / "sessions.json").read_text())["latest"] == "run-2"
