"""``python -m benchmarks.chaos``: run the chaos campaign and print its summary table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.chaos.checks import exits_table, outcome_lines, summary_table
from benchmarks.chaos.runner import SAVED_RUN, ChaosOptions, ChaosRun, SavedRun


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--cycles", type=int, default=20, help="entry + exit cycles to run (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the plan of cycles, kills and faults")
    parser.add_argument("--time-bound", type=float, default=1800.0,
                        help="seconds; no wait of a cycle runs past it, no cycle starts after it; the final "
                             "reconciliation and stop take up to about 30 s more")
    parser.add_argument("--kill-probability", type=float, default=0.5, help="per exit (half of it per entry)")
    parser.add_argument("--fault-probability", type=float, default=0.3, help="per exit: a 429 burst or a timeout")
    parser.add_argument("--settle", type=float, default=25.0, help="seconds an entry or exit may take to show")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds a position may sit past its stop")
    parser.add_argument("--plans-vanish-on-flat", action="store_true",
                        help="the simulator cancels TP/SL plans itself when a position goes flat (by default it "
                             "leaves them, and cleaning up is the bot's job)")
    parser.add_argument("--workdir", type=Path, help="where the journal, config and logs go (default: a temp dir)")
    parser.add_argument("--judge", type=Path, metavar="DIR",
                        help="run nothing: judge again the run saved in DIR (its run.json) and print the tables")
    args = parser.parse_args(argv)
    if args.judge is not None:
        findings = SavedRun.read(args.judge / SAVED_RUN).judge()
        print(summary_table(findings), exits_table(findings), sep="\n\n")
        (args.judge / "outcomes.judged.txt").write_text(outcome_lines(findings), encoding="utf-8")
        return 0 if findings.failures == 0 else 1
    if args.cycles < 1:
        parser.error("--cycles must be at least 1")
    options = ChaosOptions(
        cycles=args.cycles, seed=args.seed, time_bound_s=args.time_bound, workdir=args.workdir,
        kill_probability=args.kill_probability, fault_probability=args.fault_probability, settle_s=args.settle,
        stop_breach_grace_s=args.grace, plans_survive_flat=not args.plans_vanish_on_flat,
    )
    result = ChaosRun(options, log=lambda line: print(line, file=sys.stderr, flush=True)).run()
    print(result.report())
    return 0 if result.findings.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
