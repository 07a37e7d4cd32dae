"""The fast paths of issue 15 against their references: the sampler against
torch.multinomial in distribution, D's convolution tables against the matrix products, and
bfloat16 autocast training against float32."""

from __future__ import annotations

import copy

import pytest
import torch

from seqgan_env.models import Discriminator, Generator
from seqgan_env.models import discriminator as discriminator_module
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.precision import adam, native_bf16
from seqgan_env.presets import get_preset
from seqgan_env.sampling import sample_categorical, sample_linear

DRAWS = 400_000


def chi_square(samples: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson's statistic over the categories expected at least 5 times, and its degrees of freedom."""
    counts = torch.bincount(samples, minlength=probs.numel()).double()
    expected = probs.double() * samples.numel()
    kept = expected >= 5
    assert counts[~kept].sum() <= 5 * max(int((~kept).sum()), 1) + 50  # nothing piles up on rare tokens
    return float(((counts[kept] - expected[kept]) ** 2 / expected[kept]).sum()), int(kept.sum()) - 1


def assert_matches_distribution(samples: torch.Tensor, probs: torch.Tensor) -> None:
    statistic, dof = chi_square(samples, probs)
    # For a correct sampler the statistic is about dof +- sqrt(2 dof); 6 deviations is a
    # fixed-seed margin that a bias of a few percent on a block of tokens exceeds.
    assert abs(statistic - dof) < 6 * (2 * dof) ** 0.5, (statistic, dof)
    reference = torch.multinomial(probs, samples.numel(), replacement=True, generator=torch.Generator().manual_seed(9))
    ours = torch.bincount(samples, minlength=probs.numel()).double() / samples.numel()
    theirs = torch.bincount(reference, minlength=probs.numel()).double() / samples.numel()
    exact = probs.double()
    # Total variation from the true distribution: no worse than multinomial's own sampling noise.
    assert 0.5 * float((ours - exact).abs().sum()) < 1.2 * 0.5 * float((theirs - exact).abs().sum()) + 2e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sample_categorical_matches_multinomial_in_distribution(dtype, temperature):
    generator = torch.Generator().manual_seed(0)
    # 1037 categories: the last block is padded; logits spread like a trained generator's,
    # with a few large ones that would overflow exp() without the max subtracted.
    logits = (torch.randn(1, 1037, generator=generator) * 2.0).to(dtype)
    logits[0, 5] = 95.0
    logits[0, 700] = 94.0
    draws = sample_categorical(logits, torch.Generator().manual_seed(1), temperature, num_samples=DRAWS)
    assert draws.shape == (1, DRAWS) and int(draws.min()) >= 0 and int(draws.max()) < 1037
    probs = torch.softmax(logits.float() / temperature, dim=1)[0]
    assert_matches_distribution(draws[0], probs)


def test_sample_linear_matches_multinomial_in_distribution():
    generator = torch.Generator().manual_seed(0)
    features = torch.cat([torch.randn(1, 16, generator=generator), torch.ones(1, 1)], dim=1)
    weight = torch.randn(17, 1037, generator=generator) * 0.5
    rows = 100_000  # the same row many times: every chunk of the loop draws from one distribution
    draws = sample_linear(features.expand(rows, -1).contiguous(), weight, torch.Generator().manual_seed(1))
    assert draws.shape == (rows,)
    assert_matches_distribution(draws, torch.softmax(features @ weight, dim=1)[0])
    # and the chunked rows are independent draws: their first and second halves agree
    first, second = draws[: rows // 2], draws[rows // 2 :]
    assert abs(float((first == second).float().mean()) - float((torch.softmax(features @ weight, 1) ** 2).sum())) < 0.01


def test_convolution_tables_match_matrix_products(monkeypatch):
    preset = get_preset("paper")
    torch.manual_seed(0)
    disc = Discriminator.from_preset(preset).eval()
    tokens = torch.randint(0, preset.vocab_size + 1, (32, preset.seq_len))  # PAD included
    lengths = torch.randint(1, preset.seq_len, (32,))
    with_tables = {dtype: (disc.window_maxima(tokens, 7, dtype), disc.prefix_maxima(tokens, lengths, dtype),
                           disc.last_window_maxima(tokens, 12, dtype)) for dtype in (torch.float32, torch.bfloat16)}
    assert disc._fast_params(torch.float32)["tables"][0].dtype == torch.float32
    assert disc._fast_params(torch.bfloat16)["tables"][0].dtype == torch.float16
    monkeypatch.setattr(discriminator_module, "TABLE_MAX_BYTES", 0)  # force the matrix-product path
    disc._fast_cache.clear()
    assert disc._fast_params(torch.float32)["tables"] is None
    for dtype, tolerance in ((torch.float32, 1e-4), (torch.bfloat16, 0.08)):
        products = (disc.window_maxima(tokens, 7, dtype), disc.prefix_maxima(tokens, lengths, dtype),
                    disc.last_window_maxima(tokens, 12, dtype))
        for table_result, product_result in zip(with_tables[dtype], products):
            torch.testing.assert_close(table_result, product_result, atol=tolerance, rtol=0)


def test_float16_table_falls_back_to_float32_when_sums_could_overflow(tiny):
    torch.manual_seed(0)
    disc = Discriminator.from_preset(tiny).eval()
    with torch.no_grad():
        disc.embedding.weight.mul_(5000.0)
    tokens = torch.randint(0, tiny.vocab_size, (8, tiny.seq_len))
    assert disc._fast_params(torch.bfloat16)["tables"][0].dtype == torch.float32
    expected = disc.window_maxima(tokens, 0, torch.float32)
    got = disc.window_maxima(tokens, 0, torch.bfloat16)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-2 * float(expected.abs().max()))


def test_deep_copies_do_not_carry_the_tables(tiny):
    disc = Discriminator.from_preset(tiny).eval()
    disc.score(torch.randint(0, tiny.vocab_size, (4, tiny.seq_len)))
    assert disc._fast_cache
    assert copy.deepcopy(disc)._fast_cache == {}


@pytest.mark.skipif(not native_bf16("cpu"), reason="bfloat16 autocast is only used on CPUs with native bf16")
def test_bfloat16_autocast_training_matches_float32(tiny, trained_tiny, monkeypatch):
    """D trained with bfloat16 autocast (the default here) ends where float32 training does."""
    real, generator = trained_tiny["real"], trained_tiny["generator"]
    fake = generator.sample(1000, torch.Generator().manual_seed(0))
    results = {}
    for setting in ("1", "0"):
        monkeypatch.setenv("SEQGAN_ENV_TRAIN_BF16", setting)
        torch.manual_seed(0)
        disc = Discriminator.from_preset(tiny)
        stats = fit_discriminator(disc, real[:1000], fake, 3, adam(disc.parameters(), 1e-3), 64,
                                  torch.Generator().manual_seed(0))
        results[setting] = (stats, disc.score(torch.cat([real[1000:1500], generator.sample(500)])))
    (bf16_stats, bf16_scores), (fp32_stats, fp32_scores) = results["1"], results["0"]
    assert fp32_stats["d_accuracy"] > 0.55  # it learned something, so the comparison means something
    assert abs(bf16_stats["d_loss"] - fp32_stats["d_loss"]) < 0.02
    assert abs(bf16_stats["d_accuracy"] - fp32_stats["d_accuracy"]) < 0.03
    assert float((bf16_scores - fp32_scores).abs().mean()) < 0.02


@pytest.mark.skipif(not native_bf16("cpu"), reason="bfloat16 autocast is only used on CPUs with native bf16")
def test_bfloat16_autocast_mle_reaches_the_same_nll(tiny, tiny_models, monkeypatch):
    from train.pretrain import mle_epoch

    oracle = tiny_models["oracle"]
    real = oracle.sample(2000, torch.Generator().manual_seed(0))
    nll = {}
    for setting in ("1", "0"):
        monkeypatch.setenv("SEQGAN_ENV_TRAIN_BF16", setting)
        torch.manual_seed(0)
        generator = Generator.from_preset(tiny)
        optimizer = adam(generator.parameters(), 0.01)
        rng = torch.Generator().manual_seed(0)
        for _ in range(3):
            mle_epoch(generator, real, optimizer, 64, 5.0, rng)
        nll[setting] = oracle.nll(generator.sample(4000, torch.Generator().manual_seed(1)))
    untrained = oracle.nll(Generator.from_preset(tiny).sample(4000, torch.Generator().manual_seed(1)))
    assert untrained - nll["0"] > 0.1  # training moved NLL-oracle, so the comparison means something
    assert abs(nll["1"] - nll["0"]) < 0.03


def test_fused_adam_steps_reach_the_inference_caches(tiny):
    """The fused update writes parameters without bumping their version counters; adam()
    bumps them, so D's tables and G's merged output layer are rebuilt after a step."""
    torch.manual_seed(0)
    disc = Discriminator.from_preset(tiny).eval()
    gen = Generator.from_preset(tiny)
    tokens = torch.randint(0, tiny.vocab_size, (8, tiny.seq_len))
    before = disc.score(tokens, torch.bfloat16)
    merged = gen.output_weight(torch.float32).clone()
    for model, loss in ((disc, lambda: torch.nn.functional.cross_entropy(disc(tokens), torch.ones(8, dtype=torch.long))),
                        (gen, lambda: gen(tokens).pow(2).mean())):
        optimizer = adam(model.parameters(), 0.05)
        loss().backward()
        optimizer.step()
    disc.eval()
    with torch.no_grad():
        torch.testing.assert_close(disc.score(tokens), disc.prob_real(tokens), atol=1e-5, rtol=0)
    assert not torch.allclose(disc.score(tokens, torch.bfloat16), before)
    torch.testing.assert_close(gen.output_weight(torch.float32),
                               torch.cat([gen.output.weight.T, gen.output.bias.unsqueeze(0)]).detach())
    assert not torch.equal(gen.output_weight(torch.float32), merged)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_token_cross_entropy_matches_torch_cross_entropy(dtype):
    """MLE's loss (its gradient written into the saved softmax) against torch's, PAD rows ignored."""
    from train.losses import token_cross_entropy

    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(300, 700, generator=gen)).to(dtype)
    targets = torch.randint(0, 700, (300,), generator=gen)
    targets[::7] = 700  # PAD: no prediction
    results = []
    def torch_loss_fn(x: torch.Tensor, t: torch.Tensor, ignore: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(x.float(), t, ignore_index=ignore)

    for loss_fn in (token_cross_entropy, torch_loss_fn):
        leaf = logits.clone().requires_grad_()
        loss = loss_fn(leaf, targets, 700)
        loss.backward()
        results.append((float(loss.detach()), leaf.grad.float()))
    (ours, our_grad), (torch_loss, torch_grad) = results
    assert ours == pytest.approx(torch_loss, rel=1e-6)
    scale = float(torch_grad.abs().max())
    tolerance = 1e-6 if dtype == torch.float32 else 8e-3  # bfloat16 gradients: one rounding of 2^-8
    assert float((our_grad - torch_grad).abs().max()) <= tolerance * scale
    assert float(our_grad[::7].abs().max()) == 0.0  # ignored rows get no gradient


def test_discriminator_max_pooling_matches_relu_then_amax(tiny):
    """forward pools with max() and applies ReLU after it: the original order (ReLU over every
    window, then amax) gives the same logits and parameter gradients in float32."""
    torch.manual_seed(0)
    disc = Discriminator.from_preset(tiny).eval()
    tokens = torch.randint(0, tiny.vocab_size, (32, tiny.seq_len), generator=torch.Generator().manual_seed(1))

    def reference(model: Discriminator, batch: torch.Tensor) -> torch.Tensor:
        x = model.embedding(batch).transpose(1, 2)
        pooled = [torch.relu(conv(x)).amax(dim=2) for conv in model.convs]
        return model.output(model._highway(torch.cat(pooled, dim=1)))

    grads = []
    for forward in (disc.forward, lambda batch: reference(disc, batch)):
        disc.zero_grad()
        logits = forward(tokens)
        logits.square().sum().backward()
        grads.append((logits.detach(), [p.grad.clone() for p in disc.parameters()]))
    (ours, our_grads), (theirs, their_grads) = grads
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert any(float(g.abs().max()) > 0 for g in their_grads)
    for mine, reference_grad in zip(our_grads, their_grads):
        torch.testing.assert_close(mine, reference_grad, rtol=1e-4, atol=1e-5)
