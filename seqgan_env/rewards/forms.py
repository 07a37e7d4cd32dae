"""The form of a discriminator's score that a reward pays: P(real), its logit, or log P(real).

A discriminator gives a logit ``l(x) = log D(x) / (1 - D(x))``; the paper pays ``D(x) =
sigmoid(l(x))``. A good discriminator saturates that probability: the Bayes-optimal D* of an MLE
generator's samples has a logit near -57 nats on the paper's oracle, so ``D = sigmoid(-57)``
is about 1e-25 and a policy gradient weighted by it vanishes. The other two forms keep the
information:

* ``probability``: ``D(x) = sigmoid(l)``, in (0, 1) (the paper's; the default of the kinds that
  score with a discriminator);
* ``logit``: ``l = log D - log(1 - D)``, unbounded; for D* exactly ``log p_oracle(x) - log
  p_reference(x)`` (Goodfellow et al. 2014, Prop. 1), so that a KL penalty with beta = 1 to the
  same reference turns the objective into ``-KL(pi || p_oracle)``;
* ``log``: ``log D = -softplus(-l)``, in (-inf, 0): the non-saturating generator loss of GANs
  (Goodfellow et al. 2014, section 3).

Every form is computed from the logit, never as the log of a probability that has already
rounded to 0 or 1 (``log(sigmoid(-120))`` is ``-inf`` in float32; ``logsigmoid(-120)`` is -120).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REWARD_FORMS = ("probability", "logit", "log")
"""The forms, in the order the docs list them; ``probability`` is the paper's."""


def check_reward_form(form: str, allowed: tuple[str, ...] = REWARD_FORMS, reward: str | None = None) -> str:
    """``form``, or a ``ValueError`` naming it and the forms ``reward`` can give."""
    if form not in REWARD_FORMS:
        raise ValueError(f"unknown reward form {form!r}; choose one of {list(REWARD_FORMS)}")
    if form not in allowed:
        who = f"reward={reward!r}" if reward else "this reward"
        raise ValueError(f"{who} cannot pay reward_form={form!r}; it gives {' or '.join(map(repr, allowed))}")
    return form


def from_logits(logits: torch.Tensor, form: str) -> torch.Tensor:
    """The ``form`` of discriminator logits (float32 or wider), elementwise and stable at any logit."""
    logits = logits.float() if logits.dtype not in (torch.float32, torch.float64) else logits
    if form == "probability":
        return torch.sigmoid(logits)
    if form == "logit":
        return logits
    if form == "log":
        return F.logsigmoid(logits)
    raise ValueError(f"unknown reward form {form!r}; choose one of {list(REWARD_FORMS)}")


__all__ = ["REWARD_FORMS", "check_reward_form", "from_logits"]
