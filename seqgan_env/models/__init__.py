"""Models: the generator (policy), the oracle, and the discriminator."""

from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import Generator, LSTMState, Oracle, TokenLSTM

__all__ = ["Discriminator", "Generator", "LSTMState", "Oracle", "TokenLSTM"]
