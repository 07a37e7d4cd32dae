"""The experiment commands behind ``seqgan compare``, ``seqgan tune`` and ``seqgan evaluate --agent``,
and their options, whose choices and help come from the registries (:mod:`train.algorithms`,
:mod:`train.experiments.rewards`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import get_preset
from seqgan_env.rewards.forms import REWARD_FORMS
from train import algorithms
from train.config import get_train_config
from train.experiments import rewards as comparison_rewards

STORAGE_HELP = ("where Ray Tune keeps its experiment state: a folder (on a cluster, one every node may share) or "
                "a URI read through pyarrow, e.g. s3://bucket/path (default: {default})")


def evaluate_agent(args: argparse.Namespace) -> int:
    """Score an agent on the reference protocol (:mod:`train.experiments.scoring`) and print the summary."""
    from train.experiments.scoring import ScoringConfig, score_agent

    config = ScoringConfig(variant=args.variant, seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
                           updates=args.updates, batch_size=args.batch_size, reward=args.reward,
                           eval_samples=args.eval_samples)
    result = score_agent(args.agent, config, args.out, progress=True)
    print(json.dumps({"agent": result["agent"], "reward": config.reward, **result["summary"]}, indent=1))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from train.experiments.comparison import compare
    from train.experiments.config import compare_preset_name, get_compare_config, load_hparams

    args.preset = compare_preset_name(args.preset)
    config = get_compare_config(args.preset)
    if args.algos is not None:
        config.algos = tuple(a for a in args.algos.split(",") if a)
    if args.rewards is not None:
        config.rewards = tuple(r for r in args.rewards.split(",") if r)
    if args.reward_forms is not None:
        config.reward_forms = tuple(f for f in args.reward_forms.split(",") if f)
    if args.hparams is not None:
        config.hparams = load_hparams(args.hparams)
    if args.agent:
        config.algos = config.algos + tuple(args.agent)
    if args.seeds is not None:
        config.seeds = tuple(range(args.seeds))
    if args.settings is not None:
        config.settings = tuple(s for s in args.settings.split(",") if s)
    if args.baselines is not None:
        config.baselines = tuple(b for b in args.baselines.split(",") if b)
    if args.tokens is not None:
        config.token_budget = args.tokens
    if args.prompt_length is not None:
        config.prompt_length = args.prompt_length
    if args.fixed_data:
        config.fixed_data = True
    base = get_preset(get_train_config(config.base_preset).model_preset)
    oracle = resolve_oracle(args.oracle, base)
    result = compare(args.out, config, oracle, args.oracle, cpus=args.cpus, address=args.address,
                     gpus_per_trial=args.gpus_per_trial, threads=args.threads, device=args.device,
                     storage=args.storage)
    print(Path(args.out, "results.md").read_text())
    print(f"table: {args.out}/results.md, results.csv; at equal KL: kl_budgets.csv, best_of_n.csv, gao_fits.csv; "
          f"plots: {args.out}/learning_curves.png, {args.out}/quality_diversity.png, "
          f"{args.out}/overoptimisation.png, {args.out}/divergences.png ({len(result['rows'])} rows)")
    if result.get("regret") is not None:
        print(f"regret (exact-regret task): {args.out}/regret.csv, regret_pairs.csv, regret_curves.csv, "
              f"regret_lines.json; plot: {args.out}/regret.png")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from train.experiments.config import compare_preset_name, get_compare_config
    from train.experiments.tuning import preset_path, save_preset, tune_algorithms

    if (args.name is None) == (args.out is None):
        raise ValueError("give --name NAME (writes train/hparams/NAME.json) or --out FILE.json, not both")
    target = preset_path(args.name) if args.name is not None else Path(args.out)
    args.preset = compare_preset_name(args.preset)
    config = get_compare_config(args.preset)
    if args.tokens is not None:
        config.token_budget = args.tokens
    if args.eval_samples is not None:
        config.eval_samples = args.eval_samples
    tuning_seeds = [int(s) for s in args.tuning_seeds.split(",") if s]
    algos = [a for a in args.algos.split(",") if a]
    oracle = resolve_oracle(args.oracle, get_preset(get_train_config(config.base_preset).model_preset))
    folder = args.folder or f"runs/tune-{args.preset}"
    preset = tune_algorithms(folder, config, algos, args.trials, tuning_seeds, oracle, args.oracle,
                             setting=args.setting, cpus=args.cpus, address=args.address, threads=args.threads,
                             device=args.device, reward=comparison_rewards.with_form(args.reward, args.reward_form),
                             objective=args.objective,
                             storage=args.storage)
    budget = preset["budget"]
    print(f"budget per algorithm: {budget['trials_per_algo']} trials x {budget['tokens_per_trial']} tokens "
          f"({len(tuning_seeds)} tuning seeds) = {budget['tokens_per_algo']} generated tokens")
    for algo, values in preset["hparams"].items():
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"{algo}: {budget['metric'].split(',')[0]} {preset['objective'][algo]:.3f} at {shown}")
    print(f"preset: {save_preset(preset, target)}")
    return 0




def _described(entries: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name} ({summary})" for name, summary in entries)


def add_compare_parser(sub: argparse._SubParsersAction) -> None:
    """``seqgan compare``'s options; algorithms and rewards listed from the registries."""
    from train.experiments.config import COMPARE_PRESETS, RENAMED_COMPARE_PRESETS

    offered = [(a.name, a.summary) for a in algorithms.ALGORITHMS.values() if a.compare]
    axis = [(r.name, r.label) for r in comparison_rewards.COMPARISON_REWARDS.values() if r.role == "axis"]
    controls = comparison_rewards.names("control")
    references = comparison_rewards.names("reference")
    comp = sub.add_parser("compare", help="compare RL algorithms on the same reward: seeds, table, plots, baselines")
    comp.add_argument("--preset", default="short", choices=[*sorted(COMPARE_PRESETS), *RENAMED_COMPARE_PRESETS],
                      help="short: the paper's models, 20 updates a run; plateau: the paper's oracle until the curves "
                           "flatten, every variance reduction and reward, 5 seeds; regret / regret-paper: every "
                           "algorithm on the exact-regret task of SeqGAN-v0 / of the paper's oracle (--oracle paper), "
                           "10,000 sequences a run, 5 seeds; tiny: seconds, for trying it out (cpu: the old name of short)")
    comp.add_argument("--oracle", default=None,
                      help="'builtin' (default), 'paper' (seqgan oracle fetch), a seed, or an .npz / original pickle")
    comp.add_argument("--out", default="runs/compare", help="folder; run again to finish an interrupted comparison")
    comp.add_argument("--algos", default=None,
                      help=f"comma-separated: {_described(offered)}, or module:attr; preset's if unset "
                           "(short: reinforce,ppo,a2c)")
    comp.add_argument("--rewards", default=None,
                      help=f"comma-separated: {_described(axis)}; every algorithm runs on each (default monte_carlo)")
    comp.add_argument("--reward-forms", default=None, metavar="FORMS",
                      help=f"comma-separated forms of the rewards' scores, crossed with --rewards: "
                           f"{', '.join(REWARD_FORMS)} (P(real), the paper's; its logit; log P(real)); "
                           "default: each reward's own (P(real) for a D's)")
    comp.add_argument("--hparams", default=None, metavar="NAME_OR_FILE",
                      help="per-algorithm hyperparameters: a JSON file or a shipped preset (train/hparams/NAME.json)")
    comp.add_argument("--agent", action="append", default=[],
                      help="an extra agent 'module:attr': a function(generator, envs, seed) -> agents.Agent, or a "
                           "train.algorithms.Algorithm (with hyperparameters, search space and controls)")
    comp.add_argument("--seeds", type=int, default=None, help="number of seeds (preset's if unset)")
    comp.add_argument("--settings", default=None, help="comma-separated: fixed,adversarial (both by default)")
    comp.add_argument("--baselines", default=None,
                      help=f"comma-separated: {','.join(controls)} (each under every algorithm in --algos that runs "
                           f"controls: {','.join(algorithms.names(runs_controls=True))}),{','.join(references)} "
                           "('' for none)")
    comp.add_argument("--tokens", type=int, default=None, help="generated tokens per run (preset's if unset)")
    comp.add_argument("--prompt-length", type=int, default=None, metavar="K",
                      help="prompted episodes: each starts from the oracle's first K tokens and the agent writes the "
                           "rest (RLOO and GRPO get prompt groups of their group_size); default 0, no prompts")
    comp.add_argument("--fixed-data", action="store_true",
                      help="the fixed-data setting: every learned D, pretrained and retrained, sees only the base's "
                           "real sequences (those the MLE generator learned from), never fresh oracle ones")
    comp.add_argument("--cpus", "--workers", dest="cpus", type=int, default=None,
                      help="CPUs of the local Ray instance = runs at once, one CPU each (default: all cores)")
    comp.add_argument("--address", default=None,
                      help="run on the Ray cluster at HOST:PORT (its GCS address, or 'auto'; ray:// client addresses "
                           "are refused); default: $RAY_ADDRESS, else a local Ray that the command starts and stops itself")
    comp.add_argument("--storage", default=None, help=STORAGE_HELP.format(default="OUT/tune"))
    comp.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: one per CPU it asks for)")
    comp.add_argument("--gpus-per-trial", type=float, default=0.0,
                      help="fraction of a GPU each run asks Ray for (e.g. 0.25: four runs per GPU; default 0)")
    comp.add_argument("--device", default="cpu",
                      help="where models, rewards and agents run: cpu (default) or cuda (each run then asks Ray for a "
                           "GPU, or --gpus-per-trial of one)")
    comp.set_defaults(func=cmd_compare)


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    """``seqgan tune``'s options; the tunable algorithms and the rewards listed from the registries."""
    from train.experiments.config import COMPARE_PRESETS, RENAMED_COMPARE_PRESETS
    from train.experiments.tuning import OBJECTIVES

    tune = sub.add_parser("tune", help="tune each algorithm's hyperparameters with Optuna, the same budget each")
    tune.add_argument("--preset", default="short", choices=[*sorted(COMPARE_PRESETS), *RENAMED_COMPARE_PRESETS],
                      help="the comparison preset whose base (pretrained G and D) and settings the trials use "
                           "(cpu: the old name of short)")
    tune.add_argument("--oracle", default=None,
                      help="'builtin' (default), 'paper' (seqgan oracle fetch), a seed, or an .npz / original pickle")
    tune.add_argument("--algos", default=",".join(algorithms.tunable()),
                      help="comma-separated algorithms to tune (default: all of them)")
    tune.add_argument("--trials", type=int, default=5, help="Optuna trials per algorithm (default 5)")
    tune.add_argument("--tuning-seeds", default="100,101",
                      help="comma-separated seeds of each trial; must not be evaluation seeds of the comparison")
    tune.add_argument("--tokens", type=int, default=None, help="generated tokens per trial and seed (preset's if unset)")
    tune.add_argument("--eval-samples", type=int, default=None, help="samples for NLL-oracle (preset's if unset)")
    tune.add_argument("--reward", default=comparison_rewards.DEFAULT_REWARD, metavar="REWARD",
                      help=f"the reward trials train on: {', '.join(comparison_rewards.names('axis'))} (default: "
                           "the paper's Monte Carlo reward; dense is far cheaper; exact-regret: the task whose "
                           "regret is the reverse KL, tuned with --objective reverse_kl)")
    tune.add_argument("--reward-form", default=None, choices=REWARD_FORMS,
                      help="the form of the reward's score: probability (the paper's), logit or log (default: the "
                           "reward's own)")
    tune.add_argument("--objective", default=OBJECTIVES[0], choices=OBJECTIVES,
                      help="minimised: quality plus diversity (default), or NLL-oracle alone (rewards collapse)")
    tune.add_argument("--setting", default="fixed", choices=["fixed", "adversarial"], help="default: fixed (D frozen)")
    tune.add_argument("--name", default=None, help="write the preset to train/hparams/NAME.json (for --hparams NAME)")
    tune.add_argument("--out", default=None, help="write the preset to this .json file instead")
    tune.add_argument("--folder", default=None,
                      help="working folder: the base, the searches done, Tune's state (default runs/tune-PRESET); "
                           "run again to finish an interrupted tuning")
    tune.add_argument("--cpus", type=int, default=1, help="CPUs of the local Ray instance = trials at once (default 1)")
    tune.add_argument("--address", default=None, help="run on the Ray cluster at HOST:PORT (default: $RAY_ADDRESS)")
    tune.add_argument("--storage", default=None, help=STORAGE_HELP.format(default="FOLDER/tune"))
    tune.add_argument("--threads", type=int, default=1, help="torch threads per trial (default 1)")
    tune.add_argument("--device", default="cpu", help="where models, rewards and agents run: cpu (default) or cuda")
    tune.set_defaults(func=cmd_tune)
