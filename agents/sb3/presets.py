"""PPO, A2C and RecurrentPPO with presets that make their return the paper's objective."""

from __future__ import annotations

from typing import Any

from gymnasium.vector import VectorEnv
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

import seqgan_env
from agents.sb3.adapter import SB3VecEnvAdapter, seqgan_vector_env
from agents.sb3.policies import GeneratorActorCriticPolicy, TokenLSTMExtractor, _TokenIdFeatures
from seqgan_env.models import TokenLSTM


def discount_for(venv: VecEnv | VectorEnv) -> tuple[float, float]:
    """``(gamma, gae_lambda)`` under which the algorithm's return is SeqGAN's objective.

    Read from the reward's declaration (:attr:`seqgan_env.rewards.RewardModel.per_token`):

    * A reward that estimates the final outcome (the Monte Carlo and dense rewards, and the
      controls standing in for them): each step's reward is already an estimate of the
      expected final P(real) given the prefix and the action, i.e. the action value
      Q(s_t, a_t) of the paper's policy gradient. ``gamma = 0`` makes the return exactly that
      Q, so the advantage is ``Q_t - V(s_t)``: the paper's gradient with a learned baseline.
      (``gamma = 1`` would add up ``L - t`` estimates of the same quantity and weight early
      tokens more.)
    * A per-token reward (terminal, oracle): the undiscounted return is the objective (the
      final P(real), resp. the sequence's log-likelihood), so ``gamma = 1``.

    ``gae_lambda = 1`` (plain Monte Carlo returns) in both cases: episodes are short and
    end on their own, and with ``gamma = 0`` lambda has no effect anyway.
    """
    env = seqgan_vector_env(venv) if isinstance(venv, VecEnv) else venv
    reward_model = seqgan_env.reward_wrapper(env).reward_model
    return (1.0, 1.0) if reward_model.per_token else (0.0, 1.0)


def _as_sb3_env(envs: VecEnv | VectorEnv) -> VecEnv:
    """SB3 envs pass through; a Gymnasium vector env is adapted and monitored (for ``rollout/ep_rew_mean``)."""
    return envs if isinstance(envs, VecEnv) else VecMonitor(SB3VecEnvAdapter(envs))


def episode_steps(venv: VecEnv) -> int:
    """Steps of a full-length episode: ``seq_len``, less the prompt's tokens when the env has prompts."""
    prompt_length = getattr(seqgan_vector_env(venv).unwrapped, "prompt_length", 0)
    return int(venv.observation_space.shape[0]) - int(prompt_length)


def _episode_presets(venv: VecEnv) -> dict[str, Any]:
    """What every algorithm here shares: one episode per env per rollout, the discount of :func:`discount_for`."""
    gamma, gae_lambda = discount_for(venv)
    return dict(n_steps=episode_steps(venv), gamma=gamma, gae_lambda=gae_lambda)


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

    * ``gamma``/``gae_lambda`` from :func:`discount_for`: 0/1 for a reward that estimates the
      final outcome (Monte Carlo, dense), 1/1 for a per-token one (terminal, oracle);
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
    rollout = venv.num_envs * overrides.get("n_steps", episode_steps(venv))
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
