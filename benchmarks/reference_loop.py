"""The original SeqGAN reward loop: moved to :mod:`seqgan_env.reference`, re-exported here."""

from seqgan_env.reference import reference_rewards

__all__ = ["reference_rewards"]
