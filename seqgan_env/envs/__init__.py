"""The bare token MDP, single and batched."""

from seqgan_env.envs.token_mdp import SeqGANEnv, SeqGANVectorEnv

__all__ = ["SeqGANEnv", "SeqGANVectorEnv"]
