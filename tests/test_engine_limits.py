"""The rejection sampler that ``benchmarks/engine_limits.py`` measures is exact, and its
acceptance rate is the one the benchmark prints."""

from __future__ import annotations

import torch

from benchmarks.engine_limits import acceptance_per_proposal


def test_rejection_sampler_is_exact_and_its_acceptance_rate_is_the_printed_one():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, generator=generator) * 2.0
    log_proposal = torch.log_softmax(torch.randn(6, generator=generator), dim=0)
    draws = 200_000
    expected = acceptance_per_proposal(logits, log_proposal)
    bound = (logits - log_proposal).amax(dim=1, keepdim=True)
    for row in range(logits.shape[0]):
        proposals = torch.multinomial(log_proposal.exp(), draws, replacement=True, generator=generator)
        uniforms = torch.rand(draws, generator=generator)
        accepted = proposals[uniforms < torch.exp(logits[row, proposals] - log_proposal[proposals] - bound[row])]
        rate = accepted.numel() / draws
        sigma = (rate * (1 - rate) / draws) ** 0.5
        assert abs(rate - float(expected[row])) < 5 * sigma
        frequencies = torch.bincount(accepted, minlength=6).double() / accepted.numel()
        target = torch.softmax(logits[row].double(), dim=0)
        assert float((frequencies - target).abs().max()) < 5 * (0.25 / accepted.numel()) ** 0.5
    # A proposal equal to the target is accepted every time; a flat one far less often.
    assert torch.allclose(acceptance_per_proposal(logits, torch.log_softmax(logits, 1)), torch.ones(3))
    assert float(acceptance_per_proposal(logits, torch.full((6,), -torch.log(torch.tensor(6.0)))).max()) < 1.0
