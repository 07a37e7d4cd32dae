"""How long ``gymnasium.make("SeqGAN-v0")`` takes: in a warm process, and cold (with imports).

    python -m benchmarks.bench_make
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import gymnasium as gym

import seqgan_env  # noqa: F401


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    gym.make("SeqGAN-v0")  # warm the file cache
    warm = []
    for _ in range(5):
        start = time.perf_counter()
        env = gym.make("SeqGAN-v0")
        env.reset(seed=0)
        warm.append(time.perf_counter() - start)
    code = ("import time; t = time.perf_counter(); import gymnasium as gym; "
            "env = gym.make('seqgan_env:SeqGAN-v0'); env.reset(seed=0); print(time.perf_counter() - t)")
    cold = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    print(f"make + reset, warm process: median {statistics.median(warm):.3f} s")
    print(f"import + make + reset, fresh process: median {statistics.median(cold):.3f} s")


if __name__ == "__main__":
    main()
