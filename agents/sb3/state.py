"""PPO/A2C saved and restored as tensors and plain data: no cloudpickle, no code in the file."""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.sb3.policies import GeneratorActorCriticPolicy
from agents.sb3.presets import _as_sb3_env, quiet_logger

SB3_ALGORITHMS: dict[str, type[OnPolicyAlgorithm]] = {"ppo": PPO, "a2c": A2C}
"""The algorithms whose state :func:`sb3_state_dict` can save, by name."""

_NOT_HYPERPARAMETERS = {
    "self", "policy", "env", "device", "_init_setup_model", "policy_kwargs", "tensorboard_log", "verbose",
    "rollout_buffer_class", "rollout_buffer_kwargs", "use_rms_prop", "rms_prop_eps",
}
"""Constructor arguments of PPO/A2C that are not read back from the model's attributes."""

_COUNTERS = ("num_timesteps", "_num_timesteps_at_start", "_n_updates", "_episode_num", "_current_progress_remaining")


def _plain(value: Any, where: str) -> Any:
    """``value`` as numbers, strings, lists and dicts, or a ``ValueError`` naming ``where``."""
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise ValueError(f"{where} = {value!r} is not plain data (numbers, strings, lists, dicts): "
                     "it cannot be saved without pickling code")


def _constant(value: Any, name: str) -> Any:
    """A hyperparameter's value; a schedule must be constant (a varying one is a function, i.e. code)."""
    if not callable(value):
        return value
    start, end = value(1.0), value(0.0)
    if start != end:
        raise ValueError(f"{name} is a schedule that changes during training ({start} -> {end}); "
                         "only constant values can be saved as plain data")
    return float(start)


def sb3_state_dict(model: OnPolicyAlgorithm) -> dict[str, Any]:
    """Everything needed to continue a PPO/A2C model exactly, as tensors and plain data.

    SB3's own ``save`` writes a zip whose settings are cloudpickled, and loading that runs
    whatever code the file names. This holds instead: the hyperparameters (constant values
    only), the policy's and optimizer's state dicts, the spaces, the counters, the episode
    statistics, and the process-wide random states SB3 draws from
    (torch for actions, NumPy for minibatch order, Python's ``random``) together with the
    action space's generator. :func:`sb3_from_state_dict` rebuilds the model from it.
    """
    from seqgan_env.checkpoint import global_rng_state

    algorithm = next((name for name, cls in SB3_ALGORITHMS.items() if type(model) is cls), None)
    if algorithm is None:
        raise TypeError(f"cannot save a {type(model).__name__} as plain data: only {sorted(SB3_ALGORITHMS)}")
    if type(model.policy) is not GeneratorActorCriticPolicy:
        raise TypeError(f"cannot save a {type(model.policy).__name__} policy as plain data: "
                        "only GeneratorActorCriticPolicy (make_ppo / make_a2c)")
    if model.rollout_buffer_kwargs:
        raise ValueError(f"rollout_buffer_kwargs {model.rollout_buffer_kwargs!r} cannot be saved as plain data")
    hyperparameters: dict[str, Any] = {}
    for name in inspect.signature(type(model).__init__).parameters:
        if name in _NOT_HYPERPARAMETERS:
            continue
        value = getattr(model, name) if hasattr(model, name) else getattr(model, f"_{name}")
        hyperparameters[name] = _plain(_constant(value, name), name)
    policy_kwargs = dict(model.policy_kwargs)
    if algorithm == "a2c":  # A2C turns use_rms_prop into these two; rebuilt from the flag
        hyperparameters["use_rms_prop"] = policy_kwargs.get("optimizer_class") is torch.optim.RMSprop
        if hyperparameters["use_rms_prop"]:
            policy_kwargs.pop("optimizer_class")
            hyperparameters["rms_prop_eps"] = float(policy_kwargs.pop("optimizer_kwargs")["eps"])
    return {
        "algorithm": algorithm,
        "hyperparameters": hyperparameters,
        "policy_kwargs": _plain(policy_kwargs, "policy_kwargs"),
        "observation_nvec": [int(n) for n in model.observation_space.nvec],
        "action_n": int(model.action_space.n),
        "n_envs": int(model.n_envs),
        "policy": {k: v.detach().cpu() for k, v in model.policy.state_dict().items()},
        "optimizer": model.policy.optimizer.state_dict(),
        "counters": {name: _plain(getattr(model, name), name) for name in _COUNTERS},
        "ep_info_buffer": _plain(list(model.ep_info_buffer or []), "ep_info_buffer"),
        "ep_success_buffer": _plain(list(model.ep_success_buffer or []), "ep_success_buffer"),
        "rng": global_rng_state(),
        "action_space_rng": model.action_space.np_random.bit_generator.state,
    }


def sb3_from_state_dict(state: dict[str, Any], env: VecEnv | VectorEnv | None = None,
                        device: str | torch.device = "auto") -> OnPolicyAlgorithm:
    """Rebuild the model :func:`sb3_state_dict` saved, with our own classes; ``env`` may be ``None`` (acting only).

    As SB3's own ``load`` with an env does, the env is reset when training starts.

    Restores the process-wide random states saved with it, so that training continues
    exactly as it would have. Raises ``ValueError`` naming what does not fit.
    """
    from seqgan_env.checkpoint import set_global_rng_state

    try:
        algorithm = SB3_ALGORITHMS[state["algorithm"]]
    except KeyError:
        raise ValueError(f"unknown SB3 algorithm {state.get('algorithm')!r}; expected one of "
                         f"{sorted(SB3_ALGORITHMS)}") from None
    observation_space = spaces.MultiDiscrete(np.asarray(state["observation_nvec"], dtype=np.int64))
    action_space = spaces.Discrete(int(state["action_n"]))
    venv = _as_sb3_env(env) if env is not None else None
    if venv is not None and (venv.observation_space != observation_space or venv.action_space != action_space):
        raise ValueError(f"the saved model acts in {observation_space} -> {action_space}, the env is "
                         f"{venv.observation_space} -> {venv.action_space}")
    model = algorithm(GeneratorActorCriticPolicy, venv, policy_kwargs=dict(state["policy_kwargs"]), device=device,
                      _init_setup_model=False, **state["hyperparameters"])
    if venv is None:
        model.observation_space, model.action_space, model.n_envs = observation_space, action_space, state["n_envs"]
    model._setup_model()
    quiet_logger(model)
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    for name, value in state["counters"].items():
        if name not in _COUNTERS:
            raise ValueError(f"unknown SB3 counter {name!r}")
        setattr(model, name, value)
    model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(state["ep_success_buffer"], maxlen=model._stats_window_size)
    model.action_space.np_random.bit_generator.state = state["action_space_rng"]
    set_global_rng_state(state["rng"])
    return model
