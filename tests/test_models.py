"""Models: the oracle's exact cell and loaders, the generator's step interface, the
discriminator's fast path, and checkpoint errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from seqgan_env.checkpoint import CheckpointError, load_model, save_model
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.models.oracle import ORACLE_ARRAY_NAMES
from seqgan_env.presets import get_preset


def reference_oracle_nll(arrays: dict[str, np.ndarray], sequences: np.ndarray) -> float:
    """NLL with the README's gate equations written out in NumPy (row vectors, x @ W)."""
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    a = {k: v.astype(np.float64) for k, v in arrays.items()}
    batch, length = sequences.shape
    h = np.zeros((batch, a["U_i"].shape[0]))
    c = np.zeros_like(h)
    token = np.zeros(batch, dtype=int)
    total = 0.0
    for t in range(length):
        x = a["embedding"][token]
        i = sigmoid(x @ a["W_i"] + h @ a["U_i"] + a["b_i"])
        f = sigmoid(x @ a["W_f"] + h @ a["U_f"] + a["b_f"])
        o = sigmoid(x @ a["W_o"] + h @ a["U_o"] + a["b_o"])
        g = np.tanh(x @ a["W_c"] + h @ a["U_c"] + a["b_c"])
        c = f * c + i * g
        h = o * np.tanh(c)
        logits = h @ a["W_out"] + a["b_out"]
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        total -= logp[np.arange(batch), sequences[:, t]].sum()
        token = sequences[:, t]
    return total / (batch * length)


def test_oracle_cell_matches_the_readme_equations(tiny):
    oracle = Oracle.from_preset(tiny)
    seqs = oracle.sample(64, torch.Generator().manual_seed(0))
    expected = reference_oracle_nll(oracle.to_arrays(), seqs.numpy())
    assert oracle.nll(seqs) == pytest.approx(expected, rel=1e-5)


def test_paper_oracle_loads_and_matches_the_readme_equations(paper_oracle_path):
    oracle = Oracle.load(paper_oracle_path)
    assert (oracle.vocab_size, oracle.embedding_dim, oracle.hidden_dim) == (5000, 32, 32)
    samples = oracle.sample(32, torch.Generator().manual_seed(0))
    with np.load(paper_oracle_path) as data:
        arrays = {k: data[k] for k in data.files}
    assert oracle.nll(samples) == pytest.approx(reference_oracle_nll(arrays, samples.numpy()), rel=1e-5)


@pytest.mark.slow
def test_paper_oracle_self_nll(paper_oracle_path):
    """The oracle's NLL of its own 10,000 samples: the figure ../shared/oracle/README.md gives."""
    oracle = Oracle.load(paper_oracle_path)
    samples = oracle.sample(10_000, torch.Generator().manual_seed(0))
    assert oracle.nll(samples) == pytest.approx(5.75, abs=0.02)


def test_oracle_npz_and_pickle_round_trip(tiny, tmp_path):
    oracle = Oracle.from_preset(tiny)
    oracle.save_npz(tmp_path / "o.npz")
    arrays = oracle.to_arrays()
    with open(tmp_path / "o.pkl", "wb") as handle:
        pickle.dump([arrays[name] for name in ORACLE_ARRAY_NAMES], handle)
    seqs = oracle.sample(32, torch.Generator().manual_seed(1))
    for path in (tmp_path / "o.npz", tmp_path / "o.pkl"):
        loaded = Oracle.load(path, seq_len=tiny.seq_len)
        assert loaded.nll(seqs) == pytest.approx(oracle.nll(seqs), rel=1e-6)


def test_bad_oracle_files_get_clear_errors(tiny, tmp_path):
    arrays = Oracle.from_preset(tiny).to_arrays()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Oracle.load(tmp_path / "missing.npz")
    wrong = dict(arrays, W_i=np.zeros((3, 3), np.float32))
    np.savez(tmp_path / "shape.npz", **wrong)
    with pytest.raises(ValueError, match=r"'W_i' has shape \(3, 3\)"):
        Oracle.load(tmp_path / "shape.npz")
    partial = {k: v for k, v in arrays.items() if k != "b_out"}
    np.savez(tmp_path / "partial.npz", **partial)
    with pytest.raises(ValueError, match="missing arrays.*b_out"):
        Oracle.load(tmp_path / "partial.npz")
    np.savez(tmp_path / "nan.npz", **dict(arrays, b_c=np.full_like(arrays["b_c"], np.nan)))
    with pytest.raises(ValueError, match="NaN"):
        Oracle.load(tmp_path / "nan.npz")
    with open(tmp_path / "short.pkl", "wb") as handle:
        pickle.dump([arrays[name] for name in ORACLE_ARRAY_NAMES[:14]], handle)
    with pytest.raises(ValueError, match="holds 14 arrays, expected 15"):
        Oracle.load(tmp_path / "short.pkl")
    (tmp_path / "junk.bin").write_bytes(b"\x00not an oracle at all")
    with pytest.raises(ValueError, match="not an oracle file"):
        Oracle.load(tmp_path / "junk.bin")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="cannot read the oracle"):
        Oracle.load(tmp_path / "broken.npz")


def test_generator_step_matches_teacher_forcing(tiny):
    torch.manual_seed(0)
    gen = Generator.from_preset(tiny)
    seqs = torch.randint(0, tiny.vocab_size, (5, tiny.seq_len))
    with torch.no_grad():
        full = torch.log_softmax(gen(seqs), dim=-1)
        logits, state = gen.start(5)
        for t in range(tiny.seq_len):
            torch.testing.assert_close(torch.log_softmax(logits, -1), full[:, t], atol=1e-5, rtol=0)
            logits, state = gen.step(seqs[:, t], state)
    with torch.inference_mode():  # the inference path folds the bias into one product
        logits, _ = gen.start(5)
    torch.testing.assert_close(torch.log_softmax(logits, -1), full[:, 0], atol=1e-5, rtol=0)
    lp = gen.log_probs(seqs)
    torch.testing.assert_close(lp, full.gather(-1, seqs[..., None]).squeeze(-1))


def test_generator_samples_follow_its_distribution(tiny):
    torch.manual_seed(0)
    gen = Generator.from_preset(tiny)
    with torch.no_grad():
        gen.output.bias.copy_(torch.linspace(-2, 2, tiny.vocab_size))
    samples = gen.sample(20_000, torch.Generator().manual_seed(0))
    assert samples.shape == (20_000, tiny.seq_len)
    with torch.no_grad():
        first = torch.softmax(gen.start(1)[0], -1)[0]
    freq = torch.bincount(samples[:, 0], minlength=tiny.vocab_size).float() / 20_000
    assert float((freq - first).abs().max()) < 0.01


def test_discriminator_fast_path_matches_forward(tiny):
    for preset in (tiny, get_preset("paper")):
        torch.manual_seed(0)
        disc = Discriminator.from_preset(preset).eval()
        tokens = torch.randint(0, preset.vocab_size, (16, preset.seq_len))
        with torch.no_grad():
            expected = disc.prob_real(tokens)
        torch.testing.assert_close(disc.score(tokens), expected, atol=1e-5, rtol=0)
        assert float((disc.score(tokens, torch.bfloat16) - expected).abs().max()) < 1e-2
        for prefix in (1, preset.seq_len // 2, preset.seq_len - 1):
            lengths = torch.full((16,), prefix)
            pooled = torch.maximum(disc.prefix_maxima(tokens, lengths), disc.window_maxima(tokens, prefix))
            torch.testing.assert_close(disc.head(pooled), expected, atol=1e-5, rtol=0)


def test_discriminator_fast_path_sees_in_place_training(tiny):
    torch.manual_seed(0)
    disc = Discriminator.from_preset(tiny).eval()
    tokens = torch.randint(0, tiny.vocab_size, (8, tiny.seq_len))
    before = disc.score(tokens)
    opt = torch.optim.SGD(disc.parameters(), lr=1.0)
    torch.nn.functional.cross_entropy(disc(tokens), torch.ones(8, dtype=torch.long)).backward()
    opt.step()
    disc.eval()
    with torch.no_grad():
        torch.testing.assert_close(disc.score(tokens), disc.prob_real(tokens), atol=1e-5, rtol=0)
    assert not torch.allclose(disc.score(tokens), before)


def test_checkpoint_round_trip_and_errors(tiny, tmp_path):
    torch.manual_seed(0)
    gen = Generator.from_preset(tiny)
    disc = Discriminator.from_preset(tiny).eval()
    save_model(gen, tmp_path / "g.pt")
    save_model(disc, tmp_path / "d.pt")
    seqs = torch.randint(0, tiny.vocab_size, (4, tiny.seq_len))
    assert load_model(tmp_path / "g.pt", "generator").nll(seqs) == pytest.approx(gen.nll(seqs))
    torch.testing.assert_close(load_model(tmp_path / "d.pt").eval().score(seqs), disc.score(seqs))
    assert not list(tmp_path.glob(".*.tmp")), "atomic writes leave no temporary files"

    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="holds a 'generator', expected a 'discriminator'"):
        load_model(tmp_path / "g.pt", "discriminator")
    data = (tmp_path / "g.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "truncated.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a seqgan-env checkpoint"):
        load_model(tmp_path / "foreign.pt")
    payload = torch.load(tmp_path / "g.pt", weights_only=True)
    payload["state_dict"]["output.weight"] = torch.zeros(3, 3)
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="'output.weight' has shape"):
        load_model(tmp_path / "shape.pt")


def test_prefix_maxima_grow_one_window_at_a_time(tiny):
    torch.manual_seed(0)
    disc = Discriminator.from_preset(tiny).eval()
    tokens = torch.randint(0, tiny.vocab_size, (6, tiny.seq_len))
    running = disc.last_window_maxima(tokens, 1)
    for length in range(1, tiny.seq_len + 1):
        if length > 1:
            running = torch.maximum(running, disc.last_window_maxima(tokens, length))
        torch.testing.assert_close(running, disc.prefix_maxima(tokens, torch.full((6,), length)))
