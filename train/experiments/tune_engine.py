"""Ray Tune as the one experiment engine: a local Ray or a cluster, trials, resume, failures.

Every experiment of this project (the runs of ``seqgan compare``, a hyperparameter search)
is a Ray Tune experiment: each run is a *trial* with declared resources (one CPU, or a
fraction of a GPU), reporting its metrics to Tune while it runs. The same code runs on one
machine, where :func:`ray_session` starts a small local Ray instance, and on a cluster
(``address`` or ``RAY_ADDRESS``).

Resuming is Tune's: an interrupted experiment is continued with ``Tuner.restore``, so
finished trials are not run again. Tune keeps its experiment state as pickles
(``tuner.pkl``, cloudpickled trial records), and unpickling runs code, so a state is only
restored when it is byte for byte the one this user's own process left behind: after each
experiment the digest of its state files is recorded *outside* the results folder (see
:func:`trust_dir`). A folder received from someone else (or a state whose recording was cut
short by a hard kill) is never unpickled; its finished runs are still skipped, because the
caller only submits runs that have no result file yet.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RAY_HINT = "install it with: pip install 'seqgan-env[ray]'"


def _import_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError as exc:  # an optional extra
        raise ImportError(f"experiments run on Ray Tune, which is not installed ({exc}); {RAY_HINT}") from None
    return ray


# -- where Ray runs ------------------------------------------------------------------------
def check_address(address: str, timeout: float = 3.0) -> None:
    """Fail fast, with a clear message, when nothing answers at a Ray cluster's ``address``.

    ``ray.init`` on an address where nothing listens retries for a long while; a TCP
    connection with a short timeout tells within seconds. ``auto`` and ``local`` are left
    to Ray (they look for a cluster on this machine and fail quickly themselves).
    """
    if address in ("auto", "local"):
        return
    if address.startswith("ray://"):
        raise ValueError(
            f"--address {address!r}: Ray Client (ray://) addresses are not supported: under Ray Client, Tune's "
            "driver runs on the cluster's head node, so the results would be written on the head's disk, not "
            "here. Give the cluster's GCS address HOST:PORT (`ray start --head` prints it; port 6379 by default) "
            "from a machine that reaches it, or run seqgan on the head node (e.g. `ray job submit`); see "
            "docs/scaling.md")
    if "://" in address:
        raise ValueError(f"--address {address!r} is not HOST:PORT (or 'auto')")
    target = address
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"--address {address!r} is not HOST:PORT (or 'auto')")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConnectionError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one there with "
            "`ray start --head`, fix --address / RAY_ADDRESS, or leave both out to run on a local Ray"
        ) from None


def _use_cluster_token() -> None:
    """Present the token that ``ray start`` wrote when connecting to a cluster.

    ``ray start`` enables token authentication and keeps the token in ``~/.ray/auth_token``,
    but Ray 2.60's ``ray.init(address=...)`` only sends it with ``RAY_AUTH_MODE=token``;
    without, the connection is refused after some 20 s of retries. An explicit
    ``RAY_AUTH_MODE`` is left as it is.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or token_file.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


@contextlib.contextmanager
def ray_session(address: str | None = None, cpus: int | None = None) -> Iterator[Any]:
    """Ray for the duration of an experiment.

    * Ray already initialised in this process (a test session, a notebook): used as it is.
    * ``address`` (or ``RAY_ADDRESS``): connect to that cluster, after :func:`check_address`.
    * otherwise: start a local instance with ``cpus`` CPUs (default: all of them), no
      dashboard and a small object store (trials exchange only small results), shut down
      at the end.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _use_cluster_token()  # before Ray is imported: it reads its settings then
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address:
        check_address(address)
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        # address="local": a new instance even when another Ray runs on this machine.
        ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False,
                 object_store_memory=200 * 1024**2, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


def trial_resources(gpus: float = 0.0) -> dict[str, float]:
    """What one trial asks of the scheduler: one CPU, and ``gpus`` (a fraction) of a GPU if any.

    With ``gpus=0.25`` four trials share a GPU; Ray only schedules, the trial itself puts
    its models on the device.
    """
    if not 0 <= gpus <= 1:
        raise ValueError(f"a trial asks for a fraction of one GPU, in [0, 1]; got {gpus}")
    return {"cpu": 1, "gpu": gpus} if gpus else {"cpu": 1}


# -- trust in a saved Tune state -----------------------------------------------------------
def trust_dir() -> Path:
    """Where digests of Tune states written by this user are kept (outside any results folder)."""
    root = os.environ.get("SEQGAN_ENV_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "seqgan-env")
    return Path(root) / "tune-states"


def storage_location(storage: str | Path) -> str:
    """Where Tune keeps an experiment's state: an absolute local path, or a URI (``s3://...``) as given."""
    text = str(storage)
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).expanduser().resolve())


def _filesystem(location: str) -> tuple[Any, str]:
    """pyarrow's filesystem of ``location`` (local, or the URI's: S3, GCS, HDFS...) and the path in it."""
    from pyarrow import fs

    if "://" in location:
        return fs.FileSystem.from_uri(location)
    return fs.LocalFileSystem(), location


def _join(location: str, name: str) -> str:
    return f"{location}/{name}"


def _read_json(location: str) -> Any | None:
    """A small JSON file of a storage location, or ``None`` if there is none."""
    from pyarrow import fs as pafs

    filesystem, path = _filesystem(location)
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return json.loads(stream.read().decode())


def _write_json(location: str, data: Any) -> None:
    """Write a small JSON file: locally through a temporary file and a rename; remotely in one put."""
    text = json.dumps(data, indent=1)
    if "://" not in location:
        path = Path(location)
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_text(text)
        os.replace(temp, path)
        return
    filesystem, path = _filesystem(location)
    filesystem.create_dir(path.rpartition("/")[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(text.encode())


def _state_digest(experiment: str | Path) -> str | None:
    """sha256 over every file of a Tune experiment folder (names and contents), local or remote
    (read through pyarrow's filesystem); ``None`` where there is no such folder."""
    from pyarrow import fs as pafs

    filesystem, root = _filesystem(storage_location(experiment))
    if filesystem.get_file_info(root).type != pafs.FileType.Directory:
        return None
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    digest = hashlib.sha256()
    for info in sorted((i for i in infos if i.type == pafs.FileType.File), key=lambda i: i.path):
        digest.update(info.path[len(root):].lstrip("/").encode() + b"\0")
        with filesystem.open_input_stream(info.path) as stream:
            digest.update(hashlib.sha256(stream.read()).digest())
    return digest.hexdigest()


def _trust_record(experiment: str | Path) -> Path:
    key = hashlib.sha256(storage_location(experiment).encode()).hexdigest()[:32]
    return trust_dir() / f"{key}.json"


def record_trusted_state(experiment: str | Path) -> None:
    """Remember that ``experiment``'s current Tune state (local or remote) was written by this user's process."""
    digest = _state_digest(experiment)
    if digest is None:
        return
    record = _trust_record(experiment)
    record.parent.mkdir(parents=True, exist_ok=True)
    _write_json(str(record), {"experiment": storage_location(experiment), "sha256": digest})


def is_trusted_state(experiment: str | Path) -> bool:
    """Whether ``experiment`` holds exactly the Tune state :func:`record_trusted_state` recorded."""
    record = _trust_record(experiment)
    if not record.is_file():
        return False
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    digest = _state_digest(experiment)
    return (digest is not None and saved.get("experiment") == storage_location(experiment)
            and saved.get("sha256") == digest)


# -- running trials ------------------------------------------------------------------------
@dataclass
class TrialOutcome:
    """What came of one trial: its configuration, last reported metrics and error, if any."""

    config: dict[str, Any]
    metrics: dict[str, Any]
    error: str | None


def _error_text(error: BaseException) -> str:
    """The root cause of a trial's failure, one line (Tune wraps it in its own exceptions)."""
    cause: BaseException = error
    while getattr(cause, "cause", None) is not None and cause is not cause.cause:  # RayTaskError chain
        cause = cause.cause
    text = str(cause).strip().splitlines()
    # A Ray task error's text is the remote traceback; its last line names the exception.
    line = next((t for t in reversed(text) if t.strip()), type(cause).__name__)
    return line.strip()[:300]


def _name_trial(trial_name: Callable[[dict[str, Any]], str], folder: bool, trial: Any) -> str:
    """Tune's trial name (or folder name, made unique by the trial id) from the trial's configuration."""
    name = trial_name(trial.config["trial"])
    return f"{name}_{trial.trial_id}" if folder else name


@dataclass
class Session:
    """One call of :func:`run_experiment`: its trials' outcomes, whether it continued a
    stored session (``restored``), and whether every trial of the session has ended."""

    outcomes: list[TrialOutcome]
    restored: bool
    finished: bool


def run_experiment(
    trainable: Callable[[dict[str, Any]], None],
    configs: list[dict[str, Any]],
    storage: str | Path,
    resources: dict[str, float],
    progress: bool = True,
    search_alg: Any = None,
    num_samples: int = 1,
    metric: str | None = None,
    mode: str | None = None,
    stop: Any = None,
    max_concurrent_trials: int | None = None,
    trial_name: Callable[[dict[str, Any]], str] | None = None,
    parameters: dict[str, Any] | None = None,
    on_result: Callable[[dict[str, Any], dict[str, Any]], None] | None = None,
) -> Session:
    """Run (or continue) a Tune experiment under ``storage``; every trial's outcome.

    Without a search algorithm the trials are exactly ``configs`` (a grid over them); with
    one (e.g. Tune's ``OptunaSearch``), ``configs[0]`` is the search space, sampled
    ``num_samples`` times, and ``metric``/``mode`` say what the search optimises. Each
    trial sees its configuration as ``config["trial"]``.

    ``storage`` holds one Tune experiment per session (``run-1``, ``run-2``, ...) and
    ``sessions.json`` naming the latest. If the latest ended before all its trials did (an
    interrupt, a ``stop`` condition, a killed driver), it is continued with
    ``Tuner.restore`` (when its state is trusted, see the module's docstring): finished
    trials are kept, unfinished ones run, failed ones are retried, and ``configs`` is
    ignored. Otherwise a new session runs ``configs``. ``stop`` is Tune's stopping
    condition. ``trial_name(config["trial"])`` names each trial (and its folder).
    ``storage`` is a local folder (shared by the nodes or not) or a URI that pyarrow reads
    (``s3://bucket/path``). ``parameters`` go to every trial as keyword arguments of
    ``trainable`` through Ray's object store (``tune.with_parameters``): a trial reads nothing by path.
    ``on_result(config["trial"], result)`` is called in this process for every reported result
    (see :class:`train.experiments.result_hook.ResultHook`).
    Before any trial is submitted, :func:`check_cluster_fits` makes sure some node can run one.
    Needs Ray initialised (:func:`ray_session`).
    """
    from ray import tune

    from train.experiments.result_hook import ResultHook

    location = storage_location(storage)
    if "://" not in location:
        Path(location).mkdir(parents=True, exist_ok=True)
    sessions_file = _join(location, "sessions.json")
    sessions = _read_json(sessions_file) or {"latest": None, "finished": True, "count": 0}
    name = sessions["latest"]
    experiment = _join(location, name) if name else None
    check_cluster_fits(resources)
    if parameters:
        trainable = tune.with_parameters(trainable, **parameters)
    wrapped = tune.with_resources(trainable, resources)
    if (experiment is not None and not sessions["finished"] and tune.Tuner.can_restore(experiment)
            and is_trusted_state(experiment)):
        tuner = tune.Tuner.restore(experiment, wrapped, resume_unfinished=True, restart_errored=True)
        restored = True
    else:
        restored = False
        if not configs:
            return Session([], restored=False, finished=True)
        sessions = {"latest": f"run-{sessions['count'] + 1}", "finished": False, "count": sessions["count"] + 1}
        name = sessions["latest"]
        experiment = _join(location, name)
        _write_json(sessions_file, sessions)
        names: dict[str, Any] = {}
        if trial_name is not None:
            names = dict(trial_name_creator=functools.partial(_name_trial, trial_name, False),
                         trial_dirname_creator=functools.partial(_name_trial, trial_name, True))
        # Reused actors: a worker process imports torch and the project once, not once a trial.
        common = dict(max_concurrent_trials=max_concurrent_trials, reuse_actors=True, **names)
        if search_alg is None:
            param_space: dict[str, Any] = {"trial": tune.grid_search(configs)}
            tune_config = tune.TuneConfig(**common)
        else:
            param_space = {"trial": configs[0]}
            tune_config = tune.TuneConfig(search_alg=search_alg, num_samples=num_samples, metric=metric, mode=mode,
                                          **common)
        run_config = tune.RunConfig(
            name=name, storage_path=location, stop=stop, verbose=1 if progress else 0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            callbacks=[ResultHook(on_result)] if on_result is not None else None,
        )
        tuner = tune.Tuner(wrapped, param_space=param_space, tune_config=tune_config, run_config=run_config)
    try:
        grid = tuner.fit()
    finally:
        record_trusted_state(experiment)
    outcomes = []
    for result in grid:
        config = (result.config or {}).get("trial", {})
        error = _error_text(result.error) if result.error is not None else None
        outcomes.append(TrialOutcome(config=config, metrics=dict(result.metrics or {}), error=error))
    # Done: every trial failed or returned (Tune marks its last result "done"). An interrupt
    # (Ctrl-C, SIGUSR1) leaves trials pending or cut short, and Tune's saved state says so.
    sessions["finished"] = all(o.error is not None or o.metrics.get("done") for o in outcomes)
    _write_json(sessions_file, sessions)
    return Session(outcomes, restored=restored, finished=sessions["finished"])


# -- resources ---------------------------------------------------------------------------
RESOURCE_WAIT_ENV = "SEQGAN_ENV_RESOURCE_WAIT"
"""Seconds to wait for a node that can run one trial (default 10; raise it for an autoscaling cluster)."""


def _amounts(resources: dict[str, float]) -> str:
    return ", ".join(f"{value:g} {name}" for name, value in resources.items()) or "nothing"


def check_cluster_fits(resources: dict[str, float], wait: float | None = None) -> None:
    """RuntimeError, within ``wait`` seconds, unless some alive node of the Ray cluster has the
    resources of one trial (``{"cpu": 1, "gpu": 0.5}``); the message names what a trial asks
    for and what every node has.

    Tune would otherwise leave the trials PENDING for ever. While it waits, it asks Ray's
    autoscaler (if the cluster has one) for a node of that size.
    """
    import ray

    wait = float(os.environ.get(RESOURCE_WAIT_ENV, 10)) if wait is None else wait
    needed = {"CPU": float(resources.get("cpu", 0)), "GPU": float(resources.get("gpu", 0))}
    needed = {k: v for k, v in needed.items() if v > 0}
    deadline, requested = time.monotonic() + wait, False
    while True:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        if any(all(node["Resources"].get(k, 0) >= v for k, v in needed.items()) for node in nodes):
            if requested:
                _request_resources([])
            return
        if time.monotonic() >= deadline:
            break
        if not requested:
            requested = _request_resources([needed])
        time.sleep(0.5)
    if requested:
        _request_resources([])
    shown = "; ".join(f"{node.get('NodeManagerAddress', '?')}: "
                      f"{_amounts({k: v for k, v in node['Resources'].items() if k in ('CPU', 'GPU')})}"
                      for node in nodes) or "no alive node"
    total = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    raise RuntimeError(
        f"no node of the Ray cluster can run a trial: each trial asks for {_amounts(needed)}, and the cluster "
        f"has {_amounts(total)} in all ({shown}); waited {wait:g} s. Add a node with enough (e.g. `ray start "
        f"--address HEAD:PORT --num-cpus 2`), lower --gpus-per-trial / use --device cpu, or raise "
        f"{RESOURCE_WAIT_ENV} for an autoscaling cluster")


def _request_resources(bundles: list[dict[str, float]]) -> bool:
    """Ask Ray's autoscaler for ``bundles`` (``[]``: withdraw the request); whether it was taken."""
    try:
        from ray.autoscaler.sdk import request_resources

        request_resources(bundles=bundles)
        return True
    except Exception:  # noqa: BLE001 - a cluster without an autoscaler: nothing to ask
        return False


