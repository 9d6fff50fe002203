"""Torture runs: real processes killed with SIGKILL, invariants checked after each restart."""

from m2mpay.torture.crash import PHASES, CrashReport, run_crash

__all__ = ["PHASES", "CrashReport", "run_crash"]
