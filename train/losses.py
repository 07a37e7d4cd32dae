"""A cross-entropy for the generator's 5,000-way output layer whose backward pass is one cheap pass.

``torch.nn.functional.cross_entropy`` on ``(rows, vocab)`` logits runs log-softmax forward,
and backward a zero-filled gradient, a scatter into it, and log-softmax's backward, which
exponentiates all ``rows x vocab`` values again; under bfloat16 autocast the logits are also
widened to float32 and the gradient narrowed back. In MLE pretraining (1280 x 5000 values
per batch of 64) that backward was the largest item of the step. Here the forward pass keeps
the float32 softmax, and the gradient ``(softmax - one_hot) / count`` is written into it in
place: one multiply, one scatter and the cast to the logits' type.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable


class _TokenCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
        valid = targets != ignore_index
        safe_targets = targets.masked_fill(~valid, 0)
        count = valid.sum().clamp(min=1)
        probs = torch.softmax(logits.float(), dim=1)
        picked = probs.gather(1, safe_targets.unsqueeze(1)).squeeze(1)
        # A probability below float32's smallest normal counts as that (a loss of 87.3 nats).
        token_loss = -picked.clamp(min=torch.finfo(torch.float32).tiny).log()
        loss = token_loss.masked_fill(~valid, 0.0).sum() / count
        ctx.save_for_backward(probs, safe_targets, valid, count)
        ctx.logits_dtype = logits.dtype
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        probs, safe_targets, valid, count = ctx.saved_tensors
        # The saved softmax becomes the gradient in place: d loss / d logits = (p - one_hot) / count.
        row_scale = valid.to(probs.dtype) * (grad_loss / count)
        grad = probs.mul_(row_scale.unsqueeze(1))
        grad.scatter_add_(1, safe_targets.unsqueeze(1), -row_scale.unsqueeze(1))
        return grad.to(ctx.logits_dtype), None, None


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of ``(rows, classes)`` logits against ``(rows,)`` class ids.

    Equal to ``F.cross_entropy(logits.float(), targets, ignore_index=ignore_index)`` (rows whose
    target is ``ignore_index`` are left out of the mean) and to its gradient, which is returned
    in the logits' dtype. Float32 softmax whatever the logits' type; backward may run once
    (the saved softmax becomes the gradient).
    """
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"expected (rows, classes) logits and (rows,) targets, got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    return _TokenCrossEntropy.apply(logits, targets, ignore_index)
