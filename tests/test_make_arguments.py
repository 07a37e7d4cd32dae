"""What ``make`` does with arguments the configuration ignores, paths that are not there,
and devices: a clear error, the caller's models left alone, generators on the model's device."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import seqgan_env
from seqgan_env.checkpoint import load_model, save_model
from seqgan_env.devices import generator_on, module_on, resolve_device
from seqgan_env.factory import REWARD_ARGUMENTS
from seqgan_env.models import Discriminator, PrefixDiscriminator
from seqgan_env.rewards import MonteCarloReward, TerminalReward, resolve_dtype
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator
from seqgan_env.rewards.registry import REWARD_KINDS, REWARDS

NO_SUCH_FILE = "/no/such/file.npz"
CPU_ONLY = not torch.cuda.is_available()


# -- arguments the chosen reward ignores ------------------------------------------------------


def test_an_oracle_path_is_refused_by_rewards_that_read_no_oracle():
    for reward in ("monte_carlo", "terminal", "constant", "random"):
        with pytest.raises(ValueError, match=r"oracle='/no/such/file\.npz'.*reward='oracle'.*does not exist"):
            gym.make("SeqGAN-v0", preset="tiny", reward=reward, oracle=NO_SUCH_FILE)
    with pytest.raises(ValueError, match="reward='monte_carlo' does not use oracle='builtin'"):
        gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", oracle="builtin")


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_every_ignored_model_argument_is_named(reward, tiny_models, tiny):
    discriminator = PrefixDiscriminator.from_preset(tiny) if reward == "dense" else tiny_models["discriminator"]
    if reward == "density-ratio-dense":
        discriminator = DensityRatioDiscriminator(tiny_models["oracle"], tiny_models["generator"])
    given = {"discriminator": discriminator, "rollout_policy": tiny_models["generator"],
             "num_rollouts": 3, "compute_dtype": "float32", "oracle": tiny_models["oracle"],
             "reward_form": REWARDS[reward].forms[-1] if REWARDS[reward].forms else "logit"}
    for name, value in given.items():
        if name in REWARD_ARGUMENTS[reward]:
            continue
        for make in (lambda **kw: gym.make("SeqGAN-v0", **kw), lambda **kw: gym.make_vec("SeqGAN-v0", num_envs=2, **kw)):
            with pytest.raises(ValueError, match=rf"reward='{reward}' does not use {name}="):
                make(preset="tiny", reward=reward, **{name: value})
    # what the reward does read is accepted
    used = {name: value for name, value in given.items() if name in REWARD_ARGUMENTS[reward]}
    gym.make("SeqGAN-v0", preset="tiny", reward=reward, **used).reset(seed=0)


def test_a_missing_file_for_a_used_argument_names_the_argument_and_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"oracle='/no/such/file\.npz': does not exist"):
        gym.make("SeqGAN-v0", preset="tiny", reward="oracle", oracle=NO_SUCH_FILE)
    with pytest.raises(FileNotFoundError, match=r"discriminator='/no/such/d\.pt': does not exist"):
        gym.make("SeqGAN-v0", preset="tiny", reward="terminal", discriminator="/no/such/d.pt")
    with pytest.raises(FileNotFoundError, match=rf"rollout_policy='{tmp_path}': is a folder"):
        gym.make("SeqGAN-v0", preset="tiny", rollout_policy=str(tmp_path))


def test_saved_models_are_accepted_by_path(tiny_models, tmp_path):
    save_model(tiny_models["discriminator"], tmp_path / "d.pt")
    save_model(tiny_models["generator"], tmp_path / "g.pt")
    env = gym.make("SeqGAN-v0", preset="tiny", discriminator=tmp_path / "d.pt", rollout_policy=str(tmp_path / "g.pt"))
    env.reset(seed=0)
    assert 0.0 <= env.step(3)[1] <= 1.0


# -- devices ----------------------------------------------------------------------------------


@pytest.mark.skipif(not CPU_ONLY, reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tiny_models, tmp_path):
    message = r"device='cuda' was asked for but torch\.cuda\.is_available\(\) is False \((this torch is a CPU build|.*sees no GPU)\)"
    with pytest.raises(ValueError, match=message):
        gym.make("SeqGAN-v0", preset="tiny", device="cuda")
    with pytest.raises(ValueError, match=message):
        gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", reward="constant", device="cuda")
    with pytest.raises(ValueError, match=message):
        TerminalReward(tiny_models["discriminator"], device="cuda")
    save_model(tiny_models["generator"], tmp_path / "g.pt")
    with pytest.raises(ValueError, match=message):
        load_model(tmp_path / "g.pt", device="cuda")
    with pytest.raises(ValueError, match="'cuda:1' was asked for"):
        resolve_device("cuda:1")


def test_resolve_device_names_a_bad_device_and_passes_the_cpu():
    assert resolve_device(None) == resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"--device='gpu' is not a torch device"):
        resolve_device("gpu", "--device")


def test_auto_compute_dtype_picks_bfloat16_only_on_gpus_with_fast_bfloat16(monkeypatch):
    cuda = torch.device("cuda", 0)
    for supported, capability, expected in ((True, (8, 0), torch.bfloat16), (True, (9, 0), torch.bfloat16),
                                            (True, (7, 5), torch.float32), (False, (8, 6), torch.float32)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, supported=supported, **k: supported)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, capability=capability, **k: capability)
        assert resolve_dtype("auto", cuda) == expected, (supported, capability)
    assert resolve_dtype("float32", cuda) == torch.float32


def test_module_on_copies_only_when_a_move_is_needed(tiny_models):
    model = tiny_models["generator"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert module_on(model, torch.device("cpu")) is model
    moved = module_on(model, torch.device("meta"))  # a device every torch has
    assert moved is not model and moved.output.weight.device.type == "meta"
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_make_never_moves_the_callers_models_in_place(tiny_models, monkeypatch):
    """``nn.Module.to`` moves in place; make and the reward models must not call it on the
    caller's models (a GPU env would otherwise pull the caller's CPU models onto the GPU)."""
    moved = []
    original = torch.nn.Module.to

    def spy(self, *args, **kwargs):
        moved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    disc, gen, oracle = tiny_models["discriminator"], tiny_models["generator"], tiny_models["oracle"]
    mc = gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", discriminator=disc, rollout_policy=gen)
    gym.make("SeqGAN-v0", preset="tiny", reward="oracle", oracle=oracle)
    gym.make("SeqGAN-v0", preset="tiny", reward="terminal", discriminator=disc)
    other = Discriminator.from_preset(seqgan_env.get_preset("tiny"))
    seqgan_env.set_discriminator(mc, other)
    seqgan_env.set_rollout_policy(mc, gen)
    assert not [m for m in moved if any(m is mine for mine in (disc, gen, oracle, other))]
    model = seqgan_env.reward_wrapper(mc).reward_model
    assert model.discriminator is other and model.rollout_policy is gen  # same device: no copy either


def test_a_generator_on_another_device_seeds_one_on_the_models_device(tiny_models, monkeypatch):
    """The device logic of sampling, on a CPU-only machine: a CPU generator is used as is for
    a CPU model; for another device a generator is made there, seeded by one draw."""
    cpu = torch.device("cpu")
    rng = torch.Generator().manual_seed(3)
    assert generator_on(rng, cpu) is rng and generator_on(None, cpu) is None
    made, real_generator = [], torch.Generator
    callers = [real_generator().manual_seed(seed) for seed in (3, 3, 4)]

    def fake_generator(device="cpu"):  # stands in for torch.Generator(device="cuda") here
        made.append(torch.device(device))
        return real_generator()

    monkeypatch.setattr(torch, "Generator", fake_generator)
    target = torch.device("meta")
    derived, again, other = (generator_on(caller, target) for caller in callers)
    monkeypatch.undo()
    assert made == [target] * 3
    assert derived.initial_seed() == again.initial_seed()  # follows from the caller's generator
    assert other.initial_seed() != derived.initial_seed()
    # the sampler asks for its model's device: the CPU model draws with the caller's generator
    calls = []
    monkeypatch.setattr("seqgan_env.models.lstm.generator_on", lambda g, d: calls.append(d) or g)
    tiny_models["generator"].sample(2, rng)
    assert calls == [cpu]


@pytest.mark.cuda
@pytest.mark.skipif(CPU_ONLY, reason="needs a CUDA device")
def test_cuda_sampling_with_a_cpu_generator_is_reproducible(tiny_models):
    gen = module_on(tiny_models["generator"], resolve_device("cuda"))
    assert all(p.device.type == "cpu" for p in tiny_models["generator"].parameters())
    derived = generator_on(torch.Generator().manual_seed(0), resolve_device("cuda"))
    assert derived.device.type == "cuda"
    first = gen.sample(64, torch.Generator().manual_seed(0))
    assert first.device.type == "cuda"
    assert torch.equal(first, gen.sample(64, torch.Generator().manual_seed(0)))


@pytest.mark.cuda
@pytest.mark.skipif(CPU_ONLY, reason="needs a CUDA device")
def test_a_cuda_env_leaves_the_callers_cpu_models_on_the_cpu(tiny_models):
    disc, gen = tiny_models["discriminator"], tiny_models["generator"]
    envs = gym.make_vec("SeqGAN-v0", num_envs=4, preset="tiny", discriminator=disc, rollout_policy=gen, device="cuda")
    envs.reset(seed=0)
    assert envs.step([1, 2, 3, 4])[1].shape == (4,)
    assert all(p.device.type == "cpu" for p in (*disc.parameters(), *gen.parameters()))
    model = seqgan_env.reward_wrapper(envs).reward_model
    assert isinstance(model, MonteCarloReward) and model.discriminator.device.type == "cuda"

