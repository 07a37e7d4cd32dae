"""The divergences to the oracle per token, ``reverse_kl`` and ``forward_kl``: the estimators against
enumeration on a tiny oracle, and where they are logged (``seqgan train``'s metrics.csv and
TensorBoard, ``seqgan evaluate``, a comparison's table)."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from seqgan_env.divergence import (
    NO_ORACLE,
    all_sequences,
    exact_kl_per_token,
    forward_kl,
    per_token_divergence,
    reverse_kl,
    sequence_log_probs,
)
from seqgan_env.models import TokenLSTM
from train.adversarial import evaluate
from train.cli import main
from train.experiments.prompted import prompted_metrics, prompted_test_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_lstm(seed: int, vocab: int = 4, length: int = 3) -> TokenLSTM:
    torch.manual_seed(seed)
    return TokenLSTM(vocab, 4, 8, length, init_std=1.0).eval()


@pytest.fixture(scope="module")
def pair() -> tuple[TokenLSTM, TokenLSTM]:
    """A tiny generator and a tiny oracle (64 sequences of 3 tokens over 4 ids) that differ; the
    generator's logits are doubled (sharpened), so the two directions of the KL differ by far."""
    generator = tiny_lstm(1)
    with torch.no_grad():
        generator.output.weight.mul_(2.0)
        generator.output.bias.mul_(2.0)
    return generator, tiny_lstm(2)


def enumerated(generator: TokenLSTM, oracle: TokenLSTM) -> tuple[float, float]:
    """Exact reverse and forward KL per token, summed over the whole sequence space."""
    space = all_sequences(generator.vocab_size, generator.seq_len)
    log_g, _ = sequence_log_probs(generator, space)
    log_o, _ = sequence_log_probs(oracle, space)
    reverse = float((log_g.exp() * (log_g - log_o)).sum()) / generator.seq_len
    forward = float((log_o.exp() * (log_o - log_g)).sum()) / generator.seq_len
    return reverse, forward


def test_enumerated_divergences_are_exact_kl_per_token(pair):
    generator, oracle = pair
    reverse, forward = enumerated(generator, oracle)
    assert reverse == pytest.approx(exact_kl_per_token(generator, oracle), rel=1e-9)
    assert forward == pytest.approx(exact_kl_per_token(oracle, generator), rel=1e-9)
    assert reverse > 0.1 and forward > 0.1 and abs(reverse - forward) > 0.2  # two different numbers


def test_the_evaluation_estimates_both_divergences_within_their_standard_errors_over_seeds(pair):
    """The evaluation used by training and comparisons, over 20 seeds: every estimate within 4 of its
    standard errors of the exact value, and the z-scores spread as a unit normal's."""
    generator, oracle = pair
    exact = dict(zip(("reverse_kl", "forward_kl"), enumerated(generator, oracle)))
    scores: dict[str, list[float]] = {key: [] for key in exact}
    for seed in range(20):
        rng = torch.Generator().manual_seed(seed)
        test = oracle.sample(400, rng)
        metrics = evaluate(generator, oracle, test, 400, rng)
        for key, value in exact.items():
            assert metrics[f"{key}_stderr"] > 0
            scores[key].append((metrics[key] - value) / metrics[f"{key}_stderr"])
        # On the same samples, the identities the docs state.
        assert metrics["reverse_kl"] == pytest.approx(metrics["nll_oracle"] - metrics["entropy"], abs=1e-9)
        assert metrics["forward_kl"] == pytest.approx(metrics["nll_test"] - oracle.nll(test), abs=1e-5)
    for key, values in scores.items():
        z = torch.tensor(values)
        assert z.abs().max() < 4.0, key
        assert 0.6 < float(z.std()) < 1.5, key  # the standard error is the estimates' spread
        assert abs(float(z.mean())) < 4.0 / math.sqrt(len(values)), key


def test_the_functions_agree_with_the_evaluation_and_vanish_at_the_oracle(pair):
    generator, oracle = pair
    rng = torch.Generator().manual_seed(5)
    test = oracle.sample(300, rng)
    metrics, samples = evaluate(generator, oracle, test, 300, rng, return_samples=True)
    assert reverse_kl(generator, oracle, samples).value == pytest.approx(metrics["reverse_kl"], rel=1e-12)
    assert forward_kl(generator, oracle, test).value == pytest.approx(metrics["forward_kl"], rel=1e-12)
    itself = evaluate(oracle, oracle, test, 300, torch.Generator().manual_seed(6))
    assert itself["reverse_kl"] == 0.0 and itself["reverse_kl_stderr"] == 0.0
    assert itself["forward_kl"] == 0.0 and itself["forward_kl_stderr"] == 0.0
    assert "reverse_kl" not in evaluate(generator, None, test, 300, rng)  # no oracle, no divergence


def test_the_standard_error_treats_sequences_as_the_units():
    torch.manual_seed(0)
    log_p, log_q = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    equal = torch.full((50,), 4.0, dtype=torch.float64)
    estimate = per_token_divergence(log_p, log_q, equal)
    per_sequence = (log_p - log_q) / 4  # equal lengths: the mean of per-sequence per-token log-ratios
    assert estimate.value == pytest.approx(float(per_sequence.mean()), rel=1e-12)
    assert estimate.stderr == pytest.approx(float(per_sequence.std()) / math.sqrt(50), rel=1e-12)
    lengths = torch.randint(1, 9, (50,)).double()
    ratio = per_token_divergence(log_p, log_q, lengths)
    assert ratio.value == pytest.approx(float((log_p - log_q).sum() / lengths.sum()), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        per_token_divergence(log_p[:1], log_q[:1], equal[:1])
    with pytest.raises(ValueError, match=r"three \(N,\) tensors"):
        per_token_divergence(log_p, log_q[:3], equal)


def test_prompted_divergences_match_enumeration_given_the_oracles_prompts(pair):
    """With prompts of k tokens, the completions' KLs per token: E_prompt~oracle KL(G(.|prompt) ||
    oracle(.|prompt)) and the forward one, each within 4 standard errors of the enumerated value."""
    generator, oracle = pair
    k = 1
    space = all_sequences(4, 3)
    log_o, _ = sequence_log_probs(oracle, space)
    log_o_completion, tokens = sequence_log_probs(oracle, space, first=k)
    log_g_completion, _ = sequence_log_probs(generator, space, first=k)
    prompt = log_o - log_o_completion  # log oracle(x_<k)
    ratio = log_g_completion - log_o_completion
    exact_reverse = float(((prompt + log_g_completion).exp() * ratio).sum()) / (3 - k)
    exact_forward = float((log_o.exp() * -ratio).sum()) / (3 - k)
    assert exact_reverse > 0.1 and exact_forward > 0.1
    test = oracle.sample(2000, torch.Generator().manual_seed(11))
    scores = prompted_test_scores(oracle, test, k, 2000)
    for seed in range(3):
        metrics = prompted_metrics(generator, generator, oracle, k, 2000, seed, scores)
        assert metrics["kl_prompted"] == 0.0  # its own reference
        assert abs(metrics["reverse_kl_prompted"] - exact_reverse) < 4 * metrics["reverse_kl_prompted_stderr"]
        assert abs(metrics["forward_kl_prompted"] - exact_forward) < 4 * metrics["forward_kl_prompted_stderr"]
    assert prompted_metrics(generator, generator, oracle, 0, 2000, 0, None) == {}


# -- where they are logged ---------------------------------------------------------------------
DIVERGENCE_COLUMNS = ("reverse_kl", "reverse_kl_stderr", "forward_kl", "forward_kl_stderr")


def test_train_logs_the_divergences_at_every_evaluation(whole_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = whole_run("reinforce")
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    evaluated = [r for r in rows if r["nll_oracle"]]
    assert {r["phase"] for r in evaluated} == {"mle", "adversarial"}
    assert all(float(r[key]) >= 0 for r in evaluated for key in DIVERGENCE_COLUMNS)
    # MLE on the oracle's data brings the generator closer to it both ways.
    mle = [r for r in evaluated if r["phase"] == "mle"]
    for key in ("reverse_kl", "forward_kl"):
        assert float(mle[-1][key]) < float(mle[0][key]) - 5 * float(mle[0][f"{key}_stderr"]), key
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert {"mle/reverse_kl", "mle/forward_kl", "adversarial/reverse_kl", "adversarial/forward_kl_stderr"} <= set(
        events.Tags()["scalars"])
    final = json.loads((out / "summary.json").read_text())["final"]
    assert final["reverse_kl"] > 0 and final["forward_kl"] > 0


def test_evaluate_prints_the_divergences(whole_run, capsys):
    out = whole_run("reinforce")
    assert main(["evaluate", "--checkpoint", str(out / "generator.pt"), "--preset", "tiny", "--num", "300"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert all(metrics[key] > 0 for key in DIVERGENCE_COLUMNS)
    assert "reverse KL(generator || oracle) = " in captured.err and "nats per token" in captured.err
    assert "forward KL(oracle || generator) = " in captured.err


def test_text_says_the_divergences_are_not_available(capsys):
    from train.commands import print_metrics

    print_metrics({"reverse_kl": None, "forward_kl": None, "nll_test": 2.5})
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reverse_kl"] is None
    assert captured.err.count(NO_ORACLE) == 2


def test_the_comparison_table_leads_with_the_divergences(tmp_path):
    """The results table's first metric columns, from runs' results as a comparison writes them."""
    from train.experiments.reporting import write_report

    def run(seed: int, shift: float) -> dict:
        point = {"nll_oracle": 4.0 + shift, "nll_test": 5.0, "entropy": 3.0, "reverse_kl": 1.0 + shift,
                 "reverse_kl_stderr": 0.01, "forward_kl": 2.0 - shift, "forward_kl_stderr": 0.02}
        curve = [{"tokens": 0, **point, "reverse_kl": 1.0, "forward_kl": 2.0}, {"tokens": 100, **point}]
        return {"seed": seed, "curve": curve, "final": {**point, "mean_reward": 0.1}, "wall_time": 1.0}

    results = {("fixed", "reinforce"): [run(0, -0.1), run(1, -0.2)]}
    curve = [{"temperature": 1.0, "nll_oracle": 4.0, "nll_oracle_ci": 0.0, "nll_test": 5.0}]
    rows = write_report(tmp_path, [("fixed", "reinforce", 0), ("fixed", "reinforce", 1)], results, {}, curve,
                        (0, 1), 100, bootstrap_reps=50)
    mle, reinforce = rows
    assert mle["reverse_kl"] == pytest.approx(1.0) and mle["forward_kl"] == pytest.approx(2.0)
    assert reinforce["reverse_kl"] == pytest.approx(0.85) and reinforce["forward_kl"] == pytest.approx(2.15)
    header = next(csv.reader(open(tmp_path / "results.csv")))
    assert header[3:7] == ["reverse_kl", "reverse_kl_ci", "forward_kl", "forward_kl_ci"]
    table = (tmp_path / "results.md").read_text()
    columns = next(line for line in table.splitlines() if line.startswith("| setting"))
    assert columns.index("reverse KL") < columns.index("forward KL") < columns.index("NLL-oracle")


def test_scores_of_another_test_set_are_refused(pair):
    from seqgan_env.divergence import score_sequences

    generator, oracle = pair
    test = oracle.sample(50, torch.Generator().manual_seed(0))
    other = oracle.sample(50, torch.Generator().manual_seed(1))
    reused = evaluate(generator, oracle, test, 50, torch.Generator().manual_seed(2),
                      test_scores=score_sequences(oracle, test.clone()))
    assert reused == evaluate(generator, oracle, test, 50, torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="other sequences"):
        evaluate(generator, oracle, test, 50, torch.Generator().manual_seed(2), test_scores=score_sequences(oracle, other))
