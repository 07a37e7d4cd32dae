"""The policy: token ids through an embedding and an LSTM, the actor shaped like the generator."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from agents.base import prefix_features
from seqgan_env.models import TokenLSTM


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
