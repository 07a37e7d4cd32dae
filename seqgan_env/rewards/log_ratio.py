"""Per-token log ratios of two token models: D*'s logit, and a learned density-ratio D's, paid token by token.

A density-ratio discriminator scores a whole sequence by ``log p_num(x) - log p_ref(x)`` (its logit;
:mod:`seqgan_env.rewards.density_ratio`). Both models are autoregressive, so that logit is a sum over
the sequence's tokens, and :class:`LogRatioReward` pays each term when its token is written::

    r_t = log p_num(y_t | y_<t) - log p_ref(y_t | y_<t)

No completions, no discriminator pass: one step of each model per row and step, and the return of
an episode is exactly D's logit of the finished sequence (of the completion given its prompt, with
prompts). With ``p_num`` the oracle this is D*'s logit per token (reward ``optimal-dense``); with a
learned numerator, the learned D's (``density-ratio-dense``).

With a KL penalty ``beta = 1`` to the same reference (every agent's ``kl_beta``; the env's
:mod:`~seqgan_env.rewards.reference_penalty` wrapper), each step earns
``log p_oracle(y_t | y_<t) - log pi(y_t | y_<t)``, and the expected return is ``-KL(pi || p_oracle)``:
the exact-regret task (reward ``exact-regret``; docs/regret.md).
"""

from __future__ import annotations

import torch

from seqgan_env.devices import module_on
from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.rewards.base import RewardModel
from seqgan_env.rewards.forms import check_reward_form
from seqgan_env.rollout import PrefixStates

LOG_RATIO_FORMS = ("logit",)
"""The forms a per-token log ratio can pay: a token's share of the logit. P(real) and log P(real) are
functions of the whole sequence's logit and do not split into per-token terms."""


class LogRatioReward(RewardModel):
    """``log p_num(y_t | y_<t) - log p_ref(y_t | y_<t)`` after every token (a dense, per-token reward).

    Args:
        numerator: ``p_num``: the oracle (D*), or a learned density-ratio D's numerator.
        reference: ``p_ref``: the generator the discriminator tells the data from (usually the MLE
            generator a run starts from, frozen).
        device: where both models run.
        form: ``logit`` (the only form a per-token ratio has; see :data:`LOG_RATIO_FORMS`).
    """

    per_token = True  # each step pays its own token's share; the return is the sequence's log ratio

    def __init__(self, numerator: TokenLSTM, reference: TokenLSTM, device: str | torch.device = "cpu",
                 form: str = "logit") -> None:
        super().__init__(device)
        for role, model in (("numerator", numerator), ("reference", reference)):
            if not isinstance(model, TokenLSTM):
                raise TypeError(f"the {role} must be a seqgan_env token model (an Oracle or a Generator), "
                                f"got {type(model).__name__}")
        if numerator.vocab_size != reference.vocab_size:
            raise ValueError(f"the numerator has a vocabulary of {numerator.vocab_size} tokens, the reference "
                             f"{reference.vocab_size}")
        self.form = check_reward_form(form, LOG_RATIO_FORMS, "a per-token log ratio")
        self.numerator = module_on(numerator, self.device)
        self.reference = module_on(reference, self.device)
        self.states: tuple[PrefixStates, PrefixStates] | None = None

    def bind(self, batch_size: int) -> None:
        super().bind(batch_size)
        self.states = (PrefixStates(self.numerator, batch_size), PrefixStates(self.reference, batch_size))

    def reset(self, rows, prompts=None):
        if self.states is None or self.states[0].batch_size != rows.shape[0]:
            self.bind(rows.shape[0])  # every row starts fresh: only a prompt is left to replay
            if prompts is None:
                return
        for states in self.states:
            states.reset(rows, prompts)

    @torch.inference_mode()
    def step(self, sequences, lengths, actions, finished):
        if self.states is None:
            raise RuntimeError("reset() must be called before step()")
        tokens = actions.view(-1, 1)
        terms = []
        for states in self.states:
            states.sync()
            # float32 log-softmax: a token's log-probability must not be rounded to bfloat16's 8 bits
            terms.append(torch.log_softmax(states.logits.float(), dim=-1).gather(1, tokens).squeeze(1))
            states.advance(actions)
        return terms[0] - terms[1]


__all__ = ["LOG_RATIO_FORMS", "LogRatioReward"]
