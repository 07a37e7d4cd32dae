"""Models: the generator (policy), the oracle, and the discriminators (the paper's CNN, and an LSTM
that scores every prefix for the dense reward)."""

from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import Generator, LSTMState, TokenLSTM
from seqgan_env.models.oracle import Oracle
from seqgan_env.models.prefix_discriminator import PrefixDiscriminator

__all__ = ["Discriminator", "Generator", "LSTMState", "Oracle", "PrefixDiscriminator", "TokenLSTM"]
