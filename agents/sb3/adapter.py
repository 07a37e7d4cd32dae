"""The adapter from a batched Gymnasium vector env to SB3's ``VecEnv`` protocol."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn


def _split_infos(info: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's batched info dict -> one dict per env, as SB3 expects.

    A key ``k`` with a mask ``_k`` belongs only to the rows the mask selects; a key without
    one holds a value for every row. Nested dicts (e.g. episode statistics) split the same way.
    """
    rows: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}")
        selected = np.flatnonzero(mask) if mask is not None else range(num_envs)
        per_row = _split_infos(value, num_envs) if isinstance(value, dict) else value
        for row in selected:
            rows[row][key] = per_row[row]
    return rows


class SB3VecEnvAdapter(VecEnv):
    """One batched Gymnasium vector env (e.g. ``gymnasium.make_vec("SeqGAN-v0", num_envs=B)``) as an SB3 ``VecEnv``.

    The wrapped env must use same-step autoreset (``SeqGANVectorEnv`` does): a row that
    finishes is reset inside the step that finished it, so the returned observation is
    already the next episode's first one, ``info["final_obs"]`` holds the finished
    observation and ``info["final_info"]`` the finished step's info. The adapter reports them
    as SB3 does: ``infos[i]`` is the finished step's info with ``"terminal_observation"``
    added, and the reset's info goes to ``reset_infos[i]``.

    All rows share one env object, so the per-env methods of ``VecEnv`` act on that object:
    :meth:`get_attr` returns the same value for every index, and :meth:`set_attr` and
    :meth:`env_method` act once on the whole batch (they refuse a subset of the rows, which
    they could not honour). Seeding follows SB3: ``seed(s)`` stores the seed and the next
    :meth:`reset` passes it to the env, whose single random generator drives every row.

    Args:
        env: the Gymnasium vector env; available afterwards as :attr:`env`.
    """

    def __init__(self, env: VectorEnv) -> None:
        autoreset = env.metadata.get("autoreset_mode")
        if autoreset is not None and autoreset != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError(f"the adapter needs same-step autoreset, the env uses {autoreset}")
        self.env = env
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def _layers(self) -> Iterator[Any]:
        """The wrapped env and the envs it wraps, outermost first."""
        layer: Any = self.env
        while layer is not None:
            yield layer
            layer = getattr(layer, "env", None)

    def _find(self, name: str) -> Any:
        """The outermost layer that has attribute ``name`` (as ``get_wrapper_attr`` does for single envs)."""
        for layer in self._layers():
            if hasattr(layer, name):
                return layer
        raise AttributeError(f"no layer of {self.env} has an attribute {name!r}")

    def _check_all_rows(self, indices: VecEnvIndices, what: str) -> None:
        if sorted(set(self._get_indices(indices))) != list(range(self.num_envs)):
            raise ValueError(f"{what} acts on the whole batched env; it cannot target a subset of rows {indices}")

    def reset(self) -> np.ndarray:
        obs, info = self.env.reset(seed=self._seeds[0], options=self._options[0] or None)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = _split_infos(info, self.num_envs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without a pending step_async()")
        obs, rewards, terminated, truncated, info = self.env.step(self._actions)
        self._actions = None
        final_obs = info.pop("final_obs", None)
        final_mask = info.pop("_final_obs", np.zeros(self.num_envs, dtype=bool))
        final_infos = _split_infos(info.pop("final_info", {}), self.num_envs)
        info.pop("_final_info", None)
        infos = _split_infos(info, self.num_envs)
        for row in np.flatnonzero(final_mask):  # SB3: the last step's info here, the reset's in reset_infos
            self.reset_infos[row] = infos[row]
            infos[row] = {**final_infos[row], "terminal_observation": final_obs[row]}
        for row, row_info in enumerate(infos):
            row_info["TimeLimit.truncated"] = bool(truncated[row] and not terminated[row])
        dones = np.logical_or(terminated, truncated)
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self._find(attr_name), attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._check_all_rows(indices, "set_attr")
        try:
            layer = self._find(attr_name)
        except AttributeError:
            layer = self.env
        setattr(layer, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        self._check_all_rows(indices, "env_method")
        result = getattr(self._find(method_name), method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        wrapped = any(isinstance(layer, wrapper_class) for layer in self._layers())
        return [wrapped for _ in self._get_indices(indices)]


def seqgan_vector_env(venv: VecEnv) -> VectorEnv:
    """The Gymnasium vector env inside an SB3 env stack (``VecMonitor(SB3VecEnvAdapter(env))`` -> ``env``)."""
    layer: VecEnv = venv
    while isinstance(layer, VecEnvWrapper):
        layer = layer.venv
    if not isinstance(layer, SB3VecEnvAdapter):
        raise TypeError(f"expected an SB3VecEnvAdapter (possibly wrapped), got {type(layer).__name__}")
    return layer.env
