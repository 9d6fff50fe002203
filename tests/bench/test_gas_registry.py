"""`m2mpay bench gas` measures a listing and a rating within the binding's gas limits."""

from __future__ import annotations

from m2mpay.bench.gas import measure_gas
from m2mpay.chain import EmbeddedLedger
from m2mpay.chain.registry import REGISTRY_GAS


async def test_bench_gas_reports_a_listing_and_a_rating_with_headroom() -> None:
    # The whole bench (under a second): the fields must come from `measure_gas` itself.
    async with EmbeddedLedger() as ledger:
        report = await measure_gas(ledger)
    for step, call in (("registry_list", "list_service"), ("rate", "rate")):
        assert isinstance(report[step], int)
        assert report[step] > 21_000
        # Gas is deterministic: a regression guard that keeps each limit 1.2x above use.
        assert report[step] * 6 <= REGISTRY_GAS[call] * 5
