"""What the KL estimate adds to an evaluation (issue 22: at most 10%).

An evaluation (:func:`train.adversarial.evaluate`) samples ``eval_samples`` sequences of G,
scores them under the oracle (NLL-oracle), G on the test set (NLL-test) and G on 2,000 of its
samples (entropy; all of them below 2,000). :func:`seqgan_env.divergence.kl_to_reference` on those 2,000 samples adds
one teacher-forced pass of pi_ref, and one of G unless it replaces the entropy pass (it
returns the same entropy). Run alone: ``python -m benchmarks.bench_kl [--threads N]``.
"""

from __future__ import annotations

import argparse
import copy

import torch

from benchmarks.bench_rewards import median_seconds
from seqgan_env.divergence import kl_to_reference, sequence_log_probs
from seqgan_env.models import Generator, Oracle
from seqgan_env.presets import get_preset
from train.adversarial import evaluate


def measure(preset_name: str, eval_samples: int, test_size: int = 2000) -> dict[str, float]:
    kl_samples = min(eval_samples, 2000)  # the samples of the evaluation's entropy
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    generator, oracle = Generator.from_preset(preset).eval(), Oracle.from_preset(preset)
    reference = copy.deepcopy(generator)
    test = oracle.sample(test_size, torch.Generator().manual_seed(1))
    _, samples = evaluate(generator, oracle, test, eval_samples, torch.Generator().manual_seed(2), return_samples=True)
    evaluation = median_seconds(lambda: evaluate(generator, oracle, test, eval_samples, torch.Generator().manual_seed(2)))
    full = median_seconds(lambda: kl_to_reference(generator, reference, samples=samples[:kl_samples]))
    reference_pass = median_seconds(lambda: sequence_log_probs(reference, samples[:kl_samples]))
    return {"evaluation_s": evaluation, "kl_s": full, "reference_pass_s": reference_pass,
            "kl_share": full / evaluation, "added_share": reference_pass / evaluation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for preset, samples in (("tiny", 500), ("default", 5000), ("default", 10_000)):
        result = measure(preset, samples)
        print(f"{preset:8s} eval_samples={samples:6d}: evaluation {result['evaluation_s']:.3f} s, "
              f"KL (both passes) {result['kl_s']:.3f} s = {100 * result['kl_share']:.1f}%, "
              f"reference pass alone {result['reference_pass_s']:.3f} s = {100 * result['added_share']:.1f}%")


if __name__ == "__main__":
    main()
