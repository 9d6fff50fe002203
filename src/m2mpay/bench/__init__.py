"""Benchmarks behind `m2mpay bench …`; each returns a JSON-ready dict."""

from m2mpay.bench.gas import GAS_BUDGET, GAS_REFERENCE, measure_gas

__all__ = ["GAS_BUDGET", "GAS_REFERENCE", "measure_gas"]
