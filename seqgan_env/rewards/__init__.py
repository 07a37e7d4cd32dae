"""Rewards: what the reward wrappers compute, for a batch of envs at once, one module per family.

Every reward model works on a batch: the single-env wrapper passes a batch of one, the
vector-env wrapper a batch of ``num_envs``. All of them read the same two inputs after each
env step: the sequences so far and their lengths, plus which rows just finished.

* :class:`MonteCarloReward`: the paper's reward. For an unfinished prefix, the mean P(real)
  of N completions drawn from a rollout policy; for a finished sequence, its own P(real).
* :class:`TerminalReward`: sparse; P(real) of the finished sequence, 0 before.
* :class:`DensePrefixReward`: P(real | y_<=t) after every step from a
  :class:`~seqgan_env.models.PrefixDiscriminator`, which scores every prefix (ScratchGAN's
  discriminator, de Masson d'Autume et al., 2019): no Monte Carlo rollouts.
* :class:`OracleLikelihoodReward`: stationary; the oracle's log-probability of each token,
  so an episode's return is the sequence's log-likelihood under the oracle (of the agent's
  tokens given the prompt, when the env has prompts).
* :class:`LogRatioReward`: per token, ``log p_num(y_t | y_<t) - log p_ref(y_t | y_<t)`` of two token
  models (D*'s logit per token with the oracle as ``p_num``; a learned density-ratio D's), whose
  return is the discriminator's logit of the sequence; the exact-regret task pays it with
  ``kl_beta = 1`` to the same reference.
* :class:`ConstantReward` and :class:`RandomReward`: rewards that carry no information about
  the sequence, as controls: how much of a method's gain comes from the discriminator at all.

Every reward that pays a discriminator's score pays it in a ``form`` (:mod:`seqgan_env.rewards.forms`):
P(real) (the paper's), its logit, or log P(real).
"""

from seqgan_env.rewards.base import DiscriminatorReward, RewardModel, check_discriminator, resolve_dtype
from seqgan_env.rewards.controls import ConstantReward, RandomReward
from seqgan_env.rewards.discriminator import DensePrefixReward, MonteCarloReward, TerminalReward
from seqgan_env.rewards.forms import REWARD_FORMS, check_reward_form, from_logits
from seqgan_env.rewards.log_ratio import LogRatioReward
from seqgan_env.rewards.oracle import OracleLikelihoodReward

__all__ = [
    "REWARD_FORMS", "ConstantReward", "DensePrefixReward", "DiscriminatorReward", "LogRatioReward", "MonteCarloReward",
    "OracleLikelihoodReward", "RandomReward", "RewardModel", "TerminalReward", "check_discriminator",
    "check_reward_form", "from_logits", "resolve_dtype",
]
