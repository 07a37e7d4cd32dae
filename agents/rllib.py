"""RLlib's PPO (new API stack) on SeqGAN-v0: the same reward, RLlib's distributed algorithm.

The pieces, and why each exists:

* :func:`make_env` (registered for RLlib as :data:`ENV_NAME`): RLlib's workers do not read
  the Gymnasium registry of the driver, so the creator imports ``seqgan_env`` itself. Asked
  for ``num_envs`` environments (RLlib's ``vector_entry_point`` mode) it returns the
  batched twin, ``gymnasium.make_vec("SeqGAN-v0", num_envs=B)``: one env object steps all
  rows and the Monte Carlo reward scores them in one batch.
* :class:`NextStepAutoreset`: RLlib's env runner expects Gymnasium's next-step autoreset
  (a finished row's last observation is returned, and the *next* step resets it), the
  batched twin resets in the same step. With fixed-length episodes every row ends on the
  same step, so the adapter returns the finished observations and answers the following
  step with the fresh ones, exactly. Variable-length data (text with an end token) ends
  rows on different steps; there :func:`ppo_config` lets RLlib vectorise single envs.
* :class:`SeqGANRLModule`: RLlib's default models know no ``MultiDiscrete`` token ids (its
  ``FlattenObservations`` connector one-hot encodes them: 20 x 5001 inputs for the
  paper). The module reads ids through an embedding and an LSTM like the generator; its
  actor *is* a :class:`~seqgan_env.models.Generator`, loaded from the MLE generator, so
  its first action distribution is the generator's. The critic has its own embedding and
  LSTM, so value-loss gradients never move the pretrained actor.
* :class:`DiscriminatorRetrainCallback`: SeqGAN's adversarial half as an RLlib callback:
  after each training iteration the policy is copied into a generator, D is retrained on
  fresh samples of it, and both are installed in every env runner's reward.
* :class:`KLPenaltyCallback`: the policy's half of the KL-regularised reward (``kl_beta``),
  the reference's half being the env's wrapper (:mod:`seqgan_env.rewards.reference_penalty`).

The module is stateless: at each step the LSTM reads the whole prefix again (at most
``seq_len`` tokens, see :func:`agents.base.prefix_features`). RLlib's stateful-module path
(``STATE_IN``/``STATE_OUT``, ``max_seq_len`` chunks, zero-padded sequences for the
learner) would save those re-reads, but episodes here are 20 tokens and the observation
already holds the whole prefix, so the simple design is exact and the cost is small.

Needs the ``ray`` extra: ``pip install 'seqgan-env[ray]'``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from torch import nn

import seqgan_env
from agents.base import prefix_features
from agents.kl_penalty import kl_regularised_rewards
from seqgan_env.models import Discriminator, Generator, TokenLSTM
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.rewards.reference_penalty import REFERENCE_TERM, with_reference_penalty

try:
    from ray.rllib.algorithms.ppo import PPO, PPOConfig
    from ray.rllib.callbacks.callbacks import RLlibCallback
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.core.rl_module.torch import TorchRLModule
    from ray.tune.registry import register_env
except ImportError as exc:  # an optional extra
    raise ImportError(f"RLlib is not installed ({exc}); pip install 'seqgan-env[ray]'") from None

ENV_NAME = "seqgan-rllib"
"""The name under which :func:`make_env` is registered with RLlib (``tune.register_env``)."""


# -- the env -------------------------------------------------------------------------------
class NextStepAutoreset(VectorWrapper):
    """The batched twin (same-step autoreset) as a next-step-autoreset vector env, for RLlib.

    After a step that ends every row, the finished observations (``info["final_obs"]``) are
    returned; the next ``step`` ignores its actions (as next-step autoreset does) and returns
    the fresh first observations the env already holds, reward 0, nothing done. A step that
    ends only some rows cannot be translated (those rows have already started their next
    episode) and raises; build such envs with RLlib's ``sync`` vectorisation instead.
    """

    def __init__(self, env: VectorEnv) -> None:
        super().__init__(env)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self._fresh: np.ndarray | None = None

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        self._fresh = None
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any):
        if self._fresh is not None:  # the autoreset step of next-step mode
            obs, self._fresh = self._fresh, None
            none = np.zeros(self.num_envs, dtype=bool)
            return obs, np.zeros(self.num_envs), none, none.copy(), {}
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        done = np.logical_or(terminated, truncated)
        if done.any():
            if not done.all():
                raise RuntimeError(
                    "rows of the batched env finished on different steps (variable-length episodes); RLlib "
                    "needs next-step autoreset there: use gym_env_vectorize_mode='sync' (ppo_config does)")
            self._fresh = obs
            info = dict(info)
            final = info.pop("final_obs")
            info.pop("_final_obs", None)
            obs = np.stack(list(final))
        return obs, rewards, terminated, truncated, info


def make_env(env_config: dict[str, Any]) -> gym.Env | VectorEnv:
    """RLlib's env creator: ``SeqGAN-v0`` with ``env_config`` as its keyword arguments.

    With ``num_envs`` (RLlib's ``vector_entry_point`` mode), the batched twin behind
    :class:`NextStepAutoreset`; without, one single env (RLlib's ``sync`` mode vectorises those).
    """
    import seqgan_env  # noqa: F401  registers SeqGAN-v0 in this worker process

    kwargs = dict(env_config)
    num_envs = kwargs.pop("num_envs", None)
    beta, reference = kwargs.pop("kl_beta", 0.0), kwargs.pop("kl_reference", None)
    if num_envs is None:
        env = gym.make(seqgan_env.ENV_ID, **kwargs)
        return with_reference_penalty(env, reference, beta) if beta else env
    envs = gym.make_vec(seqgan_env.ENV_ID, num_envs=num_envs, **kwargs)
    return NextStepAutoreset(with_reference_penalty(envs, reference, beta) if beta else envs)


register_env(ENV_NAME, make_env)


def reward_wrappers(env: Any) -> list[Any]:
    """Every SeqGAN reward wrapper inside an env runner's env (one batched env, or RLlib's sync vector of singles)."""
    found = []
    layer = env
    while layer is not None:
        if isinstance(layer, (seqgan_env.SeqGANRewardWrapper, seqgan_env.SeqGANVectorRewardWrapper)):
            return [layer]
        if hasattr(layer, "envs"):  # gymnasium's SyncVectorEnv
            for sub in layer.envs:
                found += reward_wrappers(sub)
            return found
        layer = getattr(layer, "env", None)
    return found


def install_models(env: Any, discriminator: Discriminator | None, rollout_policy: TokenLSTM | None) -> int:
    """Put ``discriminator`` and ``rollout_policy`` into every reward of ``env``; how many rewards took them."""
    wrappers = reward_wrappers(env)
    for wrapper in wrappers:
        if discriminator is not None and hasattr(wrapper.reward_model, "set_discriminator"):
            wrapper.set_discriminator(discriminator)
        if rollout_policy is not None and wrapper.reward_model.uses_rollout_policy:
            wrapper.set_rollout_policy(rollout_policy)
    return len(wrappers)


# -- the module ----------------------------------------------------------------------------
class SeqGANRLModule(TorchRLModule, ValueFunctionAPI):
    """Actor-critic over token ids: the actor is a generator, the critic reads prefixes alike.

    ``model_config`` keys (all optional): ``embedding_dim`` and ``hidden_dim`` (32),
    ``start_token`` (0), ``value_hidden`` (64, the critic head's width) and ``generator``:
    ``{"config": Generator.config_dict(), "state": {name: array}}`` (see :func:`generator_spec`),
    the MLE generator the actor starts as (its sizes override the first three).
    """

    def setup(self) -> None:
        config = dict(self.model_config or {})
        vocab_size = int(self.action_space.n)
        seq_len = int(self.observation_space.shape[0])
        if int(self.observation_space.nvec[0]) != vocab_size + 1:
            raise ValueError(f"expected observations MultiDiscrete([{vocab_size + 1}] * L), got {self.observation_space}")
        spec = config.get("generator")
        sizes = spec["config"] if spec else config
        embedding_dim, hidden_dim = int(sizes.get("embedding_dim", 32)), int(sizes.get("hidden_dim", 32))
        self.pad_token = vocab_size
        self.actor = Generator(vocab_size, embedding_dim, hidden_dim, seq_len, int(sizes.get("start_token", 0)),
                               eos_token=sizes.get("eos_token"))
        self.critic_embedding = nn.Embedding(vocab_size, embedding_dim)
        self.critic_lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        width = int(config.get("value_hidden", 64))
        self.value_head = nn.Sequential(nn.Linear(hidden_dim, width), nn.Tanh(), nn.Linear(width, 1))
        if spec:
            if (spec["config"]["vocab_size"], spec["config"]["seq_len"]) != (vocab_size, seq_len):
                raise ValueError(f"the generator writes vocab {spec['config']['vocab_size']} x length "
                                 f"{spec['config']['seq_len']}, the env is vocab {vocab_size} x length {seq_len}")
            self.load_generator_state({k: torch.as_tensor(v) for k, v in spec["state"].items()})

    @torch.no_grad()
    def load_generator_state(self, state: dict[str, torch.Tensor]) -> None:
        """Make the actor the generator with ``state``; the critic starts from its embedding and LSTM too."""
        self.actor.load_state_dict(state)
        self.critic_embedding.load_state_dict(self.actor.embedding.state_dict())
        self.critic_lstm.load_state_dict(self.actor.lstm.state_dict())

    def _logits(self, obs: torch.Tensor) -> torch.Tensor:
        actor = self.actor
        return actor.output(prefix_features(actor.embedding, actor.lstm, actor.start_token, self.pad_token, obs))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._logits(batch[Columns.OBS])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        features = prefix_features(self.critic_embedding, self.critic_lstm, self.actor.start_token, self.pad_token,
                                   batch[Columns.OBS])
        return self.value_head(features).squeeze(-1)


def generator_spec(generator: TokenLSTM) -> dict[str, Any]:
    """A generator as plain data for ``model_config["generator"]`` (configs travel to every worker)."""
    return {"config": generator.config_dict(),
            "state": {k: v.detach().cpu().numpy() for k, v in generator.state_dict().items()}}


@torch.no_grad()
def copy_module_to_generator(module: SeqGANRLModule, generator: TokenLSTM) -> None:
    """The module's actor weights into ``generator`` (for evaluation, D's negatives, the rollout policy)."""
    generator.load_state_dict({k: v.to(generator.device) for k, v in module.actor.state_dict().items()})


# -- the discriminator ---------------------------------------------------------------------
class DiscriminatorRetrainCallback(RLlibCallback):
    """SeqGAN's D-step between PPO iterations, and the env runners kept in step with the policy.

    ``on_train_result`` (on the driver, after each ``algorithm.train()``): copies the
    policy into ``generator``; retrains D, by ``retrain(generator)`` when given, otherwise
    on ``num_negatives`` fresh generator samples (label 0) against as many real sequences
    (label 1) for ``epochs`` epochs with its own Adam; then installs D and the generator (as
    the Monte Carlo rollout policy) in every env runner's reward. D's statistics go into the
    result under ``"discriminator"``. Without a discriminator (a fixed reward) it only
    keeps the generator and the rollout policy in step. RLlib builds callbacks from a class
    and deep-copies its config, so settings go in through ``functools.partial`` and the
    models through :meth:`attach` on the built algorithm's instance (:func:`make_ppo` does
    both); until then it does nothing.
    """

    def __init__(self, num_negatives: int = 1000, epochs: int = 1, batch_size: int = 64, lr: float = 1e-4,
                 seed: int = 0) -> None:
        super().__init__()
        self.num_negatives, self.epochs, self.batch_size = num_negatives, epochs, batch_size
        self.lr = lr
        self.seed = seed
        self.generator: TokenLSTM | None = None
        self.discriminator: Discriminator | None = None
        self.real: torch.Tensor | None = None
        self.retrain: Callable[[TokenLSTM], dict[str, float]] | None = None
        self._optimizer: torch.optim.Optimizer | None = None
        self._rng: torch.Generator | None = None

    def attach(self, generator: TokenLSTM, discriminator: Discriminator | None = None,
               real: torch.Tensor | None = None, retrain: Callable[[TokenLSTM], dict[str, float]] | None = None) -> None:
        """Give the driver's instance its models (RLlib copies its config, so they are not passed through it)."""
        if discriminator is not None and retrain is None and real is None:
            raise ValueError("retraining D needs real sequences (real=...) or a retrain function")
        self.generator, self.discriminator, self.real, self.retrain = generator, discriminator, real, retrain

    def on_train_result(self, *, algorithm: Any, metrics_logger: Any = None, result: dict, **kwargs: Any) -> None:
        if self.generator is None:
            return
        copy_module_to_generator(algorithm.get_module(), self.generator)
        if self.discriminator is not None:
            result["discriminator"] = self.retrain_discriminator()
        discriminator, generator = self.discriminator, self.generator
        algorithm.env_runner_group.foreach_env_runner(
            lambda runner: install_models(runner.env, discriminator, generator), local_env_runner=True)

    def retrain_discriminator(self) -> dict[str, float]:
        """One D-step against the current generator; D's loss and accuracy."""
        if self.retrain is not None:
            return self.retrain(self.generator)
        if self._optimizer is None:
            self._optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr)
            self._rng = torch.Generator().manual_seed(self.seed)
        fake = self.generator.sample(self.num_negatives, self._rng)
        picks = torch.randint(self.real.shape[0], (self.num_negatives,), generator=self._rng)
        stats = fit_discriminator(self.discriminator, self.real[picks], fake, self.epochs, self._optimizer,
                                  self.batch_size, self._rng)
        self.discriminator.eval()
        return stats


class KLPenaltyCallback(RLlibCallback):
    """The policy's half of the KL-regularised reward: ``- beta * log pi(a_t | s_t)`` in each step's reward.

    ``on_sample_end`` (in the env runner, before the episodes reach the learner, whose
    connectors compute the advantages from their rewards) rewrites each sampled episode's
    rewards with :func:`agents.kl_penalty.kl_regularised_rewards`, from the log-probabilities
    RLlib recorded while acting (``Columns.ACTION_LOGP``) and, for a reward that estimates the
    final outcome (``additive=False``), the wrapper's terms from the steps' infos. The
    reference's half is the env's wrapper (``kl_beta`` and ``kl_reference`` in ``env_config``:
    :func:`make_env`). RLlib's metrics (``episode_return_mean``) are logged while sampling,
    so they stay the env's rewards.
    """

    def __init__(self, beta: float, additive: bool = True) -> None:
        super().__init__()
        self.beta, self.additive = float(beta), additive

    def on_sample_end(self, *, samples: Any, **kwargs: Any) -> None:
        for episode in samples:
            rewards = np.asarray(episode.get_rewards(), dtype=np.float64)
            if not len(rewards):
                continue
            log_probs = np.asarray(episode.get_extra_model_outputs(Columns.ACTION_LOGP), dtype=np.float64)
            infos = list(episode.get_infos())[-len(rewards):]  # the first is the reset's
            terms = np.array([[float(info.get(REFERENCE_TERM, 0.0))] for info in infos]) \
                if len(infos) == len(rewards) else None
            starts = np.zeros((len(rewards), 1), dtype=bool)
            starts[0] = True  # a chunk of an episode counts the penalties up to the chunk's end
            new = kl_regularised_rewards(rewards[:, None], log_probs.reshape(-1, 1), self.beta, starts, terms,
                                         self.additive)[:, 0]
            episode.set_rewards(new_data=new if episode.is_numpy else list(new))


# -- the algorithm -------------------------------------------------------------------------
def ppo_config(env_kwargs: dict[str, Any], generator: TokenLSTM, num_envs: int = 64, seed: int = 0,
               callback: Callable[[], RLlibCallback] | None = None, kl_beta: float = 0.0,
               reference: TokenLSTM | None = None, **training: Any) -> PPOConfig:
    """RLlib PPO on ``SeqGAN-v0`` with the presets of SB3's :func:`agents.sb3.make_ppo`.

    * one episode per env per iteration: ``num_envs`` sequences of ``seq_len`` tokens, like
      one generator update of the paper; 4 minibatches, 4 epochs, learning rate 1e-3, no
      entropy bonus, clip 0.2, gradient norm 0.5, no KL penalty (as SB3's PPO);
    * ``gamma``/``lambda`` from :func:`agents.sb3.discount_for` (0/1 for the Monte Carlo
      reward, 1/1 otherwise), so the return is SeqGAN's objective;
    * the actor starts as ``generator`` (:class:`SeqGANRLModule`);
    * one local env runner holding the batched twin (``vector_entry_point``) for
      fixed-length data, RLlib's ``sync`` vector of single envs for variable-length data;
      a local learner: a comparison's trial is one process with one CPU. Scale out with
      ``config.env_runners(num_env_runners=N)`` / ``config.learners(num_learners=N)``.

    Args:
        env_kwargs: keyword arguments of ``gymnasium.make_vec("SeqGAN-v0", ...)`` (preset,
            reward, discriminator, rollout_policy, oracle, num_rollouts, ...).
        generator: the MLE generator the actor starts as.
        num_envs: sequences per iteration.
        seed: RLlib's seed.
        callback: a callback factory, e.g. ``functools.partial(DiscriminatorRetrainCallback, ...)``.
        kl_beta: beta of the KL-regularised reward (0: none), to ``reference`` (pi_ref): the
            env's wrapper and :class:`KLPenaltyCallback`.
        reference: pi_ref, e.g. a frozen copy of the MLE generator (needed when ``kl_beta > 0``).
        training: overrides of ``PPOConfig.training`` arguments.
    """
    if kl_beta and reference is None:
        raise ValueError("kl_beta > 0 needs the reference generator (reference=...)")
    from agents.sb3 import discount_for

    probe = gym.make_vec(seqgan_env.ENV_ID, num_envs=1, **env_kwargs)
    gamma, lambda_ = discount_for(probe)
    seq_len = int(probe.single_observation_space.shape[0])
    fixed_length = probe.unwrapped.eos_token is None
    steps = seq_len - int(getattr(probe.unwrapped, "prompt_length", 0))  # the prompt's tokens are no steps
    probe.close()
    rollout = num_envs * steps
    settings = dict(train_batch_size_per_learner=rollout, minibatch_size=max(2, rollout // 4), num_epochs=4,
                    lr=1e-3, gamma=gamma, lambda_=lambda_, entropy_coeff=0.0, clip_param=0.2, grad_clip=0.5,
                    vf_loss_coeff=0.5, use_kl_loss=False)
    settings.update(training)
    env_config = dict(env_kwargs, kl_beta=kl_beta, kl_reference=reference) if kl_beta else dict(env_kwargs)
    callbacks = [callback] if callback is not None else []
    if kl_beta:
        callbacks.append(functools.partial(KLPenaltyCallback, kl_beta, additive=gamma == 1.0))
    config = (
        PPOConfig()
        .environment(ENV_NAME, env_config=env_config)
        .framework("torch")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs, rollout_fragment_length=steps,
                     gym_env_vectorize_mode="vector_entry_point" if fixed_length else "sync")
        .learners(num_learners=0)
        .training(**settings)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=SeqGANRLModule,
                                               model_config={"generator": generator_spec(generator)}))
        .debugging(seed=seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=num_envs)
    )
    if callbacks:
        config = config.callbacks(callbacks if len(callbacks) > 1 else callbacks[0])
    return config


def make_ppo(env_kwargs: dict[str, Any], generator: Generator, num_envs: int = 64, seed: int = 0,
             discriminator: Discriminator | None = None, real: torch.Tensor | None = None,
             retrain: Callable[[TokenLSTM], dict[str, float]] | None = None, num_negatives: int = 1000,
             kl_beta: float = 0.0, reference: TokenLSTM | None = None, **training: Any) -> PPO:
    """RLlib PPO (:func:`ppo_config`) whose iterations keep ``generator`` equal to the policy.

    ``generator`` is the driver's copy of the policy after every ``train()``; with
    ``discriminator`` (and ``real`` sequences, or a ``retrain`` function), D is retrained
    between iterations (:class:`DiscriminatorRetrainCallback`, on ``num_negatives`` fresh
    samples unless ``retrain`` says otherwise). ``kl_beta``/``reference``: the KL-regularised
    reward (:func:`ppo_config`). ``training``: overrides of :func:`ppo_config`.
    """
    callback = functools.partial(DiscriminatorRetrainCallback, num_negatives=num_negatives, seed=seed)
    algorithm = ppo_config(env_kwargs, generator, num_envs, seed, callback, kl_beta, reference,
                           **training).build_algo()
    callbacks = algorithm.callbacks if isinstance(algorithm.callbacks, list) else [algorithm.callbacks]
    for instance in callbacks:
        if isinstance(instance, DiscriminatorRetrainCallback):
            instance.attach(generator, discriminator, real, retrain)
    return algorithm


def env_steps(result: dict[str, Any]) -> int:
    """Env steps sampled in one ``algorithm.train()`` result (RLlib's new-stack metrics)."""
    runners = result.get("env_runners", {})
    return int(runners.get("num_env_steps_sampled", 0))


def mean_step_reward(result: dict[str, Any]) -> float:
    """Mean reward per step of the iteration's finished episodes (return over length)."""
    runners = result.get("env_runners", {})
    length = float(runners.get("episode_len_mean", 0.0) or 0.0)
    return float(runners.get("episode_return_mean", 0.0)) / length if length else float("nan")


__all__ = [
    "DiscriminatorRetrainCallback", "ENV_NAME", "KLPenaltyCallback", "NextStepAutoreset", "SeqGANRLModule", "copy_module_to_generator",
    "env_steps", "generator_spec", "install_models", "make_env", "make_ppo", "mean_step_reward", "ppo_config",
    "reward_wrappers",
]
