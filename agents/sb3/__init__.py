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
* :class:`KLPenaltyCallback`: the policy's half of the KL-regularised reward (``kl_beta``).
* :class:`SB3Agent`: the :class:`agents.base.Agent` face of an SB3 model, for code that
  samples through that interface.

The modules follow SB3's own layout: :mod:`~agents.sb3.adapter` (the env), :mod:`~agents.sb3.policies`,
:mod:`~agents.sb3.presets` (the algorithms), :mod:`~agents.sb3.callbacks`, :mod:`~agents.sb3.state` (saving as
plain data) and :mod:`~agents.sb3.agent`; everything public is importable from ``agents.sb3``.

SB3 algorithms learn from the rollouts they collect themselves, so they train with
``model.learn(total_timesteps)`` rather than through :meth:`agents.base.Agent.learn`.
"""

from agents.sb3.adapter import SB3VecEnvAdapter, seqgan_vector_env
from agents.sb3.agent import SB3Agent
from agents.sb3.callbacks import DiscriminatorRetrainCallback, KLPenaltyCallback
from agents.sb3.policies import GeneratorActorCriticPolicy, TokenLSTMExtractor, copy_actor_to_generator
from agents.sb3.presets import discount_for, make_a2c, make_ppo, make_recurrent_ppo, quiet_logger
from agents.sb3.state import SB3_ALGORITHMS, sb3_from_state_dict, sb3_state_dict

__all__ = [
    "SB3_ALGORITHMS", "DiscriminatorRetrainCallback", "GeneratorActorCriticPolicy", "KLPenaltyCallback", "SB3Agent", "SB3VecEnvAdapter",
    "TokenLSTMExtractor", "copy_actor_to_generator", "discount_for", "make_a2c", "make_ppo", "make_recurrent_ppo",
    "quiet_logger", "sb3_from_state_dict", "sb3_state_dict", "seqgan_vector_env",
]
