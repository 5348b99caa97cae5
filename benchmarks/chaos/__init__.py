"""Chaos harness: the real bot process between the simulator and the channel server, with kill -9 and faults.

``python -m benchmarks.chaos [--cycles N] [--seed S] [--time-bound SECONDS]``; see BENCHMARKS.md.
"""

from benchmarks.chaos.runner import ChaosOptions, ChaosResult, ChaosRun

__all__ = ["ChaosOptions", "ChaosResult", "ChaosRun"]
