"""stable-baselines3 PPO and A2C on SeqGAN-v0: the same reward, off-the-shelf algorithms.

The pieces, and why each exists:

* :class:`SB3VecEnvAdapter`: SB3 speaks its own ``VecEnv`` protocol (``step`` returns
  ``(obs, rewards, dones, infos)`` with one info dict per env and the finished episode's last
  observation in ``info["terminal_observation"]``). The batched ``SeqGANVectorEnv`` is a
  Gymnasium vector env with same-step autoreset, so the adapter translates one batched env
  into that protocol without splitting it into per-row envs.
* :class:`TokenLSTMExtractor`: SB3 one-hot encodes ``MultiDiscrete`` observations before the
  features extractor, which for the paper's vocabulary (5000 x 20 positions) is a 100,000-wide
  float vector per observation. The extractor instead reads the token ids through an
  embedding and an LSTM, exactly like the generator does.
* :class:`GeneratorActorCriticPolicy`: an actor-critic whose actor *is* the generator's
  architecture (embedding -> LSTM -> linear head), so it can start from an MLE-pretrained
  :class:`~seqgan_env.models.Generator` with the identical next-token distribution.
* :func:`make_ppo` / :func:`make_a2c`: the algorithms with presets that make their return
  the paper's objective (see :func:`discount_for`).
* :class:`DiscriminatorRetrainCallback`: SeqGAN's adversarial half, retraining D on each
  rollout's sequences and handing it to the env's reward.
* :class:`SB3Agent`: the :class:`agents.base.Agent` face of an SB3 model, for code that
  samples through that interface.

SB3 algorithms learn from the rollouts they collect themselves, so they train with
``model.learn(total_timesteps)`` rather than through :meth:`agents.base.Agent.learn`.
"""

from __future__ import annotations

import inspect
from collections import deque
from pathlib import Path
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn
from torch import nn

import seqgan_env
from agents.base import Agent, EpisodeBatch, prefix_features
from seqgan_env.checkpoint import FORMAT, CheckpointError, atomic_save, load_checkpoint
from seqgan_env.models import Discriminator, TokenLSTM
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.precision import adam
from seqgan_env.rewards import MonteCarloReward

# -- the env adapter ----------------------------------------------------------------------


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


# -- the policy -----------------------------------------------------------------------------


class TokenLSTMExtractor(BaseFeaturesExtractor):
    """Reads a padded prefix of token ids the way the generator does; features = its LSTM state.

    The observation is the prefix ``y_1 .. y_t`` left-aligned and padded with PAD =
    ``vocab_size``. As in :class:`~seqgan_env.models.TokenLSTM`, the start token is fed first,
    then the prefix; the hidden state after the last prefix token (position ``t`` of that
    input, ``t`` = the number of non-PAD ids) is what predicts ``y_{t+1}``, and is the output.
    The LSTM only runs as far as the longest prefix in the batch needs.

    Args:
        observation_space: ``MultiDiscrete([vocab_size + 1] * seq_len)``.
        embedding_dim: token embedding size.
        hidden_dim: LSTM hidden size (= ``features_dim``).
        start_token: id fed before the prefix.
    """

    def __init__(self, observation_space: spaces.MultiDiscrete, embedding_dim: int = 32,
                 hidden_dim: int = 32, start_token: int = 0) -> None:
        if not isinstance(observation_space, spaces.MultiDiscrete) or len(set(observation_space.nvec.tolist())) != 1:
            raise TypeError(f"expected MultiDiscrete([vocab_size + 1] * seq_len), got {observation_space}")
        super().__init__(observation_space, features_dim=hidden_dim)
        self.vocab_size = int(observation_space.nvec[0]) - 1
        self.pad_token = self.vocab_size
        if not 0 <= start_token < self.vocab_size:
            raise ValueError(f"start_token {start_token} is outside [0, {self.vocab_size})")
        self.start_token = start_token
        self.embedding = nn.Embedding(self.vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return prefix_features(self.embedding, self.lstm, self.start_token, self.pad_token, observations)

    @torch.no_grad()
    def load_generator(self, generator: TokenLSTM) -> None:
        """Copy ``generator``'s embedding and LSTM (same shapes and start token required)."""
        ours = (self.vocab_size, self.embedding.embedding_dim, self.lstm.hidden_size, self.start_token)
        theirs = (generator.vocab_size, generator.embedding_dim, generator.hidden_dim, generator.start_token)
        if ours != theirs:
            raise ValueError(
                f"extractor (vocab, embedding, hidden, start token) = {ours} does not match the generator's {theirs}"
            )
        self.embedding.load_state_dict(generator.embedding.state_dict())
        self.lstm.load_state_dict(generator.lstm.state_dict())


class _TokenIdFeatures(BaseModel):
    """Hands token ids, not SB3's one-hot encoding, to a :class:`TokenLSTMExtractor`.

    Every feature path of ``ActorCriticPolicy`` (``forward``, ``evaluate_actions``,
    ``get_distribution``, ``predict_values``) ends in ``BaseModel.extract_features``, which
    one-hot encodes ``MultiDiscrete`` observations. Placed after ``ActorCriticPolicy`` in the
    bases of a policy class, this class sits just above ``BaseModel`` in the method resolution
    order, so this one override reaches all of those paths.
    """

    def extract_features(self, obs: Any, features_extractor: BaseFeaturesExtractor) -> torch.Tensor:
        if isinstance(features_extractor, TokenLSTMExtractor):
            return features_extractor(obs)
        return super().extract_features(obs, features_extractor)


class GeneratorActorCriticPolicy(ActorCriticPolicy, _TokenIdFeatures):
    """An actor-critic with the generator's architecture as its actor.

    Defaults differ from ``ActorCriticPolicy`` where the generator needs it:

    * ``features_extractor_class = TokenLSTMExtractor`` (token ids through embedding + LSTM);
    * ``net_arch = dict(pi=[], vf=[64])``: the actor maps the LSTM state straight to the
      action head, a ``Linear(hidden, vocab)`` like the generator's output layer, so
      :meth:`load_generator` can make the policy *be* the generator;
    * ``share_features_extractor = False``: the critic has its own LSTM, so value-loss
      gradients never move the actor's pretrained weights.

    Any of them can still be passed explicitly.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None,
                 features_extractor_class: type[BaseFeaturesExtractor] = TokenLSTMExtractor,
                 share_features_extractor: bool = False, **kwargs: Any) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule,
            net_arch=dict(pi=[], vf=[64]) if net_arch is None else net_arch,
            features_extractor_class=features_extractor_class,
            share_features_extractor=share_features_extractor, **kwargs,
        )

    @torch.no_grad()
    def load_generator(self, generator: TokenLSTM) -> None:
        """Make the actor compute ``generator``'s next-token distribution exactly.

        Copies the embedding and LSTM into the features extractor(s) (the critic's too, so it
        starts from the generator's features) and the output layer into ``action_net``. Call
        it after construction: SB3 initialises weights (orthogonally, by default) while it
        builds the policy, never afterwards.
        """
        if len(self.mlp_extractor.policy_net) > 0:
            raise ValueError("load_generator needs an actor without hidden layers (net_arch pi=[])")
        extractors = {id(e): e for e in (self.pi_features_extractor, self.vf_features_extractor)}
        for extractor in extractors.values():
            if not isinstance(extractor, TokenLSTMExtractor):
                raise TypeError(f"load_generator needs TokenLSTMExtractor features, got {type(extractor).__name__}")
            extractor.load_generator(generator)
        self.action_net.load_state_dict(generator.output.state_dict())


@torch.no_grad()
def copy_actor_to_generator(policy: GeneratorActorCriticPolicy, generator: TokenLSTM) -> None:
    """The inverse of :meth:`GeneratorActorCriticPolicy.load_generator`: the actor's weights into ``generator``.

    The actor has the generator's architecture, so afterwards ``generator`` samples exactly
    what the policy does: for evaluation, sampling negatives for D, and as the rollout policy.
    """
    extractor = policy.pi_features_extractor
    if not isinstance(extractor, TokenLSTMExtractor) or len(policy.mlp_extractor.policy_net) > 0:
        raise TypeError("the policy's actor is not a generator (TokenLSTMExtractor features, net_arch pi=[])")
    generator.embedding.load_state_dict(extractor.embedding.state_dict())
    generator.lstm.load_state_dict(extractor.lstm.state_dict())
    generator.output.load_state_dict(policy.action_net.state_dict())


# -- the algorithms -------------------------------------------------------------------------


def discount_for(venv: VecEnv | VectorEnv) -> tuple[float, float]:
    """``(gamma, gae_lambda)`` under which the algorithm's return is SeqGAN's objective.

    * Monte Carlo reward: each step's reward is already an estimate of the expected final
      P(real) given the prefix and the action, i.e. the action value Q(s_t, a_t) of the
      paper's policy gradient. ``gamma = 0`` makes the return exactly that Q, so the
      advantage is ``Q_t - V(s_t)``: the paper's gradient with a learned baseline.
      (``gamma = 1`` would add up ``L - t`` estimates of the same quantity and weight early
      tokens more.)
    * Terminal and oracle rewards (and any other): the undiscounted return is the
      objective (the final P(real), resp. the sequence's log-likelihood), so ``gamma = 1``.

    ``gae_lambda = 1`` (plain Monte Carlo returns) in both cases: episodes are short and
    end on their own, and with ``gamma = 0`` lambda has no effect anyway.
    """
    env = seqgan_vector_env(venv) if isinstance(venv, VecEnv) else venv
    reward_model = seqgan_env.reward_wrapper(env).reward_model
    return (0.0, 1.0) if isinstance(reward_model, MonteCarloReward) else (1.0, 1.0)


def _as_sb3_env(envs: VecEnv | VectorEnv) -> VecEnv:
    """SB3 envs pass through; a Gymnasium vector env is adapted and monitored (for ``rollout/ep_rew_mean``)."""
    return envs if isinstance(envs, VecEnv) else VecMonitor(SB3VecEnvAdapter(envs))


def _episode_presets(venv: VecEnv) -> dict[str, Any]:
    """What every algorithm here shares: one episode per env per rollout, the discount of :func:`discount_for`."""
    gamma, gae_lambda = discount_for(venv)
    return dict(n_steps=int(venv.observation_space.shape[0]), gamma=gamma, gae_lambda=gae_lambda)


def quiet_logger(model: BaseAlgorithm) -> BaseAlgorithm:
    """Give ``model`` a logger that writes nothing.

    SB3's default logger makes a new temporary folder at every ``learn()`` call, and a
    training loop here calls ``learn()`` once per generator update.
    """
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _build(algorithm: type[OnPolicyAlgorithm], envs: VecEnv | VectorEnv, generator: TokenLSTM | None,
           defaults: dict[str, Any], overrides: dict[str, Any]) -> OnPolicyAlgorithm:
    venv = _as_sb3_env(envs)
    policy_kwargs: dict[str, Any] = {}
    if generator is not None:
        policy_kwargs["features_extractor_kwargs"] = dict(
            embedding_dim=generator.embedding_dim, hidden_dim=generator.hidden_dim,
            start_token=generator.start_token,
        )
    policy_kwargs.update(overrides.pop("policy_kwargs", None) or {})
    kwargs = {**_episode_presets(venv), **defaults, **overrides}
    model = algorithm(GeneratorActorCriticPolicy, venv, policy_kwargs=policy_kwargs, **kwargs)
    if kwargs.get("tensorboard_log") is None and not kwargs.get("verbose"):
        quiet_logger(model)
    if generator is not None:
        model.policy.load_generator(generator)
    return model


def make_ppo(envs: VecEnv | VectorEnv, generator: TokenLSTM | None = None, **overrides: Any) -> PPO:
    """PPO with a :class:`GeneratorActorCriticPolicy` whose actor starts as ``generator``.

    Presets (each can be overridden by keyword; ``policy_kwargs`` are merged):

    * ``gamma``/``gae_lambda`` from :func:`discount_for`: 0/1 for the Monte Carlo reward,
      1/1 for the terminal and oracle rewards;
    * ``n_steps = seq_len``: one whole episode per env per rollout, so a rollout is a batch
      of ``num_envs`` sequences, like one generator update of the paper;
    * ``batch_size`` = a quarter of the rollout (4 minibatches) and ``n_epochs = 4``: a few
      reuses of each batch, the point of PPO over plain policy gradient;
    * ``learning_rate = 1e-3``: lower than the paper's 0.01 for REINFORCE, because PPO takes
      16 gradient steps per rollout and the actor starts pretrained;
    * ``ent_coef = 0``: the pretrained generator already has the data's entropy.

    Args:
        envs: ``gymnasium.make_vec("SeqGAN-v0", ...)`` (wrapped in :class:`SB3VecEnvAdapter`
            and ``VecMonitor`` here) or an SB3 ``VecEnv`` built on the adapter.
        generator: an MLE-pretrained generator to start the actor from, or ``None``.
        overrides: any ``PPO`` keyword argument.
    """
    venv = _as_sb3_env(envs)
    rollout = venv.num_envs * overrides.get("n_steps", int(venv.observation_space.shape[0]))
    defaults = dict(batch_size=max(2, rollout // 4), n_epochs=4, learning_rate=1e-3, ent_coef=0.0)
    return _build(PPO, venv, generator, defaults, overrides)


def make_a2c(envs: VecEnv | VectorEnv, generator: TokenLSTM | None = None, **overrides: Any) -> A2C:
    """A2C with a :class:`GeneratorActorCriticPolicy` whose actor starts as ``generator``.

    Presets as :func:`make_ppo` (``gamma``/``gae_lambda``, ``n_steps = seq_len``,
    ``ent_coef = 0``), plus: A2C takes one gradient step per rollout of ``num_envs``
    sequences, which is the paper's generator update, so it takes the paper's optimiser and
    step size, Adam with ``learning_rate = 1e-2``, instead of SB3's RMSprop at 7e-4 (which
    barely moves a pretrained actor); and normalised advantages, since Monte Carlo rewards
    differ from their baseline by only a few hundredths.
    """
    defaults = dict(learning_rate=1e-2, ent_coef=0.0, use_rms_prop=False, normalize_advantage=True)
    return _build(A2C, envs, generator, defaults, overrides)


def make_recurrent_ppo(envs: VecEnv | VectorEnv, **overrides: Any) -> Any:
    """sb3-contrib's ``RecurrentPPO`` on the env, reading token ids through :class:`TokenLSTMExtractor`.

    ``RecurrentPPO("MlpLstmPolicy", ...)`` out of the box one-hot encodes the observation
    (100,000 inputs for the paper's 5000 x 20) and, with torch 2.13, fails because SB3 sizes
    that one-hot layer with a NumPy integer. This policy reads the prefix's ids instead, and
    its recurrent state carries across the steps of an episode on top of that. Presets as
    :func:`make_ppo`. Needs the ``contrib`` extra (``pip install 'seqgan-env[contrib]'``).
    """
    try:
        from sb3_contrib import RecurrentPPO
        from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
    except ImportError as exc:  # an optional extra
        raise ImportError("RecurrentPPO needs sb3-contrib: pip install 'seqgan-env[contrib]'") from exc

    class TokenRecurrentPolicy(RecurrentActorCriticPolicy, _TokenIdFeatures):
        """RecurrentPPO's policy with token-id features (see :class:`_TokenIdFeatures`)."""

    venv = _as_sb3_env(envs)
    presets = _episode_presets(venv)
    kwargs = {**presets, "n_epochs": 4, "learning_rate": 1e-3,
              "batch_size": max(2, venv.num_envs * presets["n_steps"] // 4), **overrides}
    policy_kwargs = dict(features_extractor_class=TokenLSTMExtractor, lstm_hidden_size=32)
    policy_kwargs.update(kwargs.pop("policy_kwargs", None) or {})
    return RecurrentPPO(TokenRecurrentPolicy, venv, policy_kwargs=policy_kwargs, **kwargs)


# -- the discriminator ----------------------------------------------------------------------


class DiscriminatorRetrainCallback(BaseCallback):
    """SeqGAN's D-step between generator updates: retrain D on each rollout's sequences.

    While the algorithm collects a rollout, the callback keeps the finished sequences (SB3's
    ``infos[i]["terminal_observation"]``: the last observation of an episode is its whole
    sequence). At the rollout's end, before the policy update, it trains ``discriminator``
    in place on them (label 0) against as many real sequences (label 1) for ``epochs``
    epochs with its own Adam optimizer, then puts it into the env's reward with
    :func:`seqgan_env.set_discriminator`, so the update and the next rollout see the new D.
    Logs ``discriminator/d_loss`` (mean loss of the last epoch) and
    ``discriminator/d_accuracy`` (accuracy over the last epoch's batches).

    Args:
        discriminator: D, trained in place.
        real: ``(N, seq_len)`` real sequences to draw positives from.
        epochs: epochs over (real + generated) per rollout.
        batch_size: sequences per gradient step.
        lr: Adam learning rate (1e-4, the paper's).
        seed: seed of the draws of positives and of the shuffling.
        verbose: SB3 verbosity.
    """

    def __init__(self, discriminator: Discriminator, real: torch.Tensor, epochs: int = 3, batch_size: int = 64,
                 lr: float = 1e-4, seed: int = 0, verbose: int = 0) -> None:
        super().__init__(verbose)
        if real.ndim != 2 or real.shape[1] != discriminator.seq_len:
            raise ValueError(f"real must be (N, {discriminator.seq_len}) token ids, got shape {tuple(real.shape)}")
        self.discriminator = discriminator
        self.real = real.to(discriminator.device)
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = adam(discriminator.parameters(), lr)
        self.rng = torch.Generator().manual_seed(seed)
        self._finished: list[np.ndarray] = []

    def _init_callback(self) -> None:
        seqgan_env.reward_wrapper(seqgan_vector_env(self.training_env))  # fail now, not after a rollout

    def _on_rollout_start(self) -> None:
        self._finished = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "terminal_observation" in info:
                self._finished.append(info["terminal_observation"])
        return True

    def _on_rollout_end(self) -> None:
        if not self._finished:
            return
        fake = torch.as_tensor(np.stack(self._finished), device=self.discriminator.device)
        stats = self.train_discriminator(fake)
        seqgan_env.set_discriminator(seqgan_vector_env(self.training_env), self.discriminator)
        for name, value in stats.items():
            self.logger.record(f"discriminator/{name}", value)

    def train_discriminator(self, fake: torch.Tensor) -> dict[str, float]:
        """``epochs`` epochs on ``fake`` (label 0) and as many random real sequences (label 1)."""
        picks = torch.randint(self.real.shape[0], (fake.shape[0],), generator=self.rng).to(self.real.device)
        return fit_discriminator(self.discriminator, self.real[picks], fake, self.epochs, self.optimizer,
                                 self.batch_size, self.rng)


# -- saving as plain data --------------------------------------------------------------------

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


# -- the agent interface --------------------------------------------------------------------


class SB3Agent(Agent):
    """An SB3 model behind :class:`agents.base.Agent`: it acts, saves and loads.

    It does not :meth:`learn` from an :class:`~agents.base.EpisodeBatch`: SB3 algorithms
    learn from the rollouts they collect themselves (their buffers hold values and
    log-probabilities recorded while acting), so train with ``agent.model.learn(total_timesteps)``.

    Args:
        model: a PPO or A2C model, e.g. from :func:`make_ppo`.
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        self.model = model

    def act(self, observations: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(observations, deterministic=False)
        return np.asarray(actions, dtype=np.int64).reshape(-1)

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        raise NotImplementedError(
            "SB3 algorithms learn from their own rollouts: train with agent.model.learn(total_timesteps) "
            "on an SB3VecEnvAdapter env"
        )

    def save(self, path: str | Path) -> None:
        """Write the model as tensors and plain data (:func:`sb3_state_dict`), never SB3's pickled zip."""
        atomic_save({"format": FORMAT, "kind": "sb3-agent", **sb3_state_dict(self.model)}, path)

    @classmethod
    def load(cls, path: str | Path, env: VecEnv | VectorEnv | None = None, device: str | torch.device = "auto",
             **kwargs: Any) -> "SB3Agent":
        """Load a model saved by :meth:`save` (``torch.load(weights_only=True)``: the file cannot run code).

        ``env``: the env to train on (``None`` for acting only). Raises
        :class:`~seqgan_env.checkpoint.CheckpointError` for a file that is not such a model.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        state = load_checkpoint(path, "sb3-agent")
        try:
            return cls(sb3_from_state_dict(state, env, device))
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: not a usable SB3 model ({exc!r})") from exc


__all__ = [
    "DiscriminatorRetrainCallback", "GeneratorActorCriticPolicy", "SB3Agent", "SB3VecEnvAdapter",
    "TokenLSTMExtractor", "discount_for", "make_a2c", "make_ppo", "sb3_from_state_dict", "sb3_state_dict",
    "seqgan_vector_env",
]
