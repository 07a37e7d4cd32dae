"""Shared fixtures: tiny models, and the paper's oracle from ../shared when it is there."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.presets import get_preset

REPO = Path(__file__).resolve().parents[1]
PAPER_ORACLE = REPO.parent / "shared" / "oracle" / "seqgan_paper_oracle.npz"


@pytest.fixture(autouse=True)
def _quiet_untrained_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no (discriminator|rollout policy) given")
        yield


@pytest.fixture(autouse=True)
def _threads_left_as_found():
    """Torch's thread count is process-wide and a training run's last digits depend on it, so a
    test that changes it and does not restore it makes every later run of the session differ
    from a run made in a fresh process (the shared ``whole_run`` references of the resume tests
    among them). Such a test fails here; the count is restored for the next one."""
    threads = torch.get_num_threads()
    yield
    left = torch.get_num_threads()
    if left != threads:
        torch.set_num_threads(threads)
        pytest.fail(f"the test left torch's thread count at {left} (it found {threads}): later runs would "
                    "round differently; restore it")


@pytest.fixture
def paper_oracle_path() -> Path:
    if not PAPER_ORACLE.is_file():
        pytest.skip(f"the paper's oracle is not at {PAPER_ORACLE} (it ships in ../shared, beside a CI clone)")
    return PAPER_ORACLE


@pytest.fixture
def tiny():
    return get_preset("tiny")


@pytest.fixture
def tiny_models(tiny):
    """A tiny oracle, generator and discriminator with fixed seeds."""
    torch.manual_seed(0)
    return {
        "oracle": Oracle.from_preset(tiny),
        "generator": Generator.from_preset(tiny),
        "discriminator": Discriminator.from_preset(tiny).eval(),
    }


@pytest.fixture(scope="session")
def trained_tiny():
    """Tiny models after a few seconds of the real pipeline: MLE G, and D trained against it."""
    from train.pretrain import DiscriminatorSchedule, MLEConfig, pretrain_generator, train_discriminator

    preset = get_preset("tiny")
    torch.manual_seed(0)
    rng = torch.Generator().manual_seed(0)
    oracle = Oracle.from_preset(preset)
    real = oracle.sample(2000, rng)
    generator = Generator.from_preset(preset)
    pretrain_generator(generator, real, MLEConfig(epochs=3), rng, progress=False)
    discriminator = Discriminator.from_preset(preset)
    train_discriminator(discriminator, generator, real, DiscriminatorSchedule(rounds=5, epochs=3, num_negatives=2000, lr=1e-3), rng)
    return {"oracle": oracle, "generator": generator, "discriminator": discriminator.eval(), "real": real}


@pytest.fixture
def trained_tiny_copy(trained_tiny):
    """A private copy of :func:`trained_tiny` that a test may train further."""
    import copy

    return {key: copy.deepcopy(value) for key, value in trained_tiny.items()}


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One small local Ray for the whole test session (2 CPUs, no dashboard), shut down at the end.

    Trust records of Tune states (see ``train.experiments.tune_engine.trust_dir``) go to a temporary folder.
    """
    import logging
    import os

    ray = pytest.importorskip("ray")
    os.environ["SEQGAN_ENV_STATE_DIR"] = str(tmp_path_factory.mktemp("seqgan-state"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             object_store_memory=150 * 1024**2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def whole_run(tmp_path_factory):
    """``whole_run(algo)``: the folder of an uninterrupted ``seqgan train --preset tiny --algo algo``,
    run once per session when first asked for (the reference that resumed runs must equal)."""
    from train.cli import main

    runs = {}

    def get(algo: str) -> Path:
        if algo not in runs:
            out = tmp_path_factory.mktemp(f"whole-{algo}")
            assert main(["train", "--preset", "tiny", "--algo", algo, "--out", str(out)]) == 0
            runs[algo] = out
        return runs[algo]

    return get


@pytest.fixture
def one_thread():
    """One torch thread for a test of tiny models: on a shared 2-core machine two threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
