"""The follower of transfers to devices, on real chains: a transfer counts once it has
its confirmations, exactly once (also across a restart), and a reorganisation that
drops a transfer not yet confirmed never has it counted (Anvil's `anvil_reorg`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from m2mpay.chain import AnvilNode, EmbeddedLedger, Ledger, RpcLedger, TokenContract
from m2mpay.chain.deploy import deploy_contracts
from m2mpay.chain.devkeys import dev_keys
from m2mpay.crypto import Address, PrivateKey
from m2mpay.market.transfer_follow import TransferSales
from m2mpay.market.transfer_sales import Change, TransferTerms
from m2mpay.market.transfer_store import TransferSaleStore
from m2mpay.stream.supply import MeterReport, Supply
from tests.chain.anvil_faults import reorg_from

PRICE = 10
DEVICE = PrivateKey.generate().address


class InstantDevice(Supply):
    """A unit double of a device on the bus: it delivers a permit at once."""

    def __init__(self, log: list[tuple[bytes, int]], session: bytes) -> None:
        self._log = log
        self._session = session
        self._report: MeterReport | None = None
        self._delivered = 0
        self.stopped = False

    async def start(self, report: MeterReport, delivered: int) -> None:
        self._report, self._delivered = report, delivered

    def permit(self, units: int) -> None:
        self._log.append((self._session, units))
        assert self._report is not None
        self._delivered = units
        self._report(units)

    async def stop(self) -> None:
        self.stopped = True

    @property
    def delivered(self) -> int:
        return self._delivered


class Rig:
    def __init__(self, ledger: Ledger, token: TokenContract, payer: PrivateKey, path: Path):
        self.ledger = ledger
        self.token = token
        self.payer = payer
        self.path = path
        self.permits: list[tuple[bytes, int]] = []

    def sales(self) -> TransferSales:
        def supply_for(device: Address, service: str, session: bytes) -> Supply:
            assert (device, service) == (DEVICE, "light")
            return InstantDevice(self.permits, session)

        return TransferSales(self.ledger, TransferSaleStore(self.path), supply_for, follow=False)

    def terms(self, confirmations: int, underpay: Change = Change.KEEP) -> TransferTerms:
        return TransferTerms(
            b"\x07" * 32,
            DEVICE,
            "light",
            self.token.address,
            PRICE,
            1,
            0,
            confirmations,
            underpay,
            Change.CREDIT,
            0,
        )

    async def pay(self, amount: int, payer: PrivateKey | None = None) -> int:
        receipt = await self.token.transfer(payer or self.payer, DEVICE, amount)
        return receipt.block_number

    async def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            await self.ledger.advance_time(1)


async def _rig(ledger: Ledger, tmp_path: Path) -> Rig:
    keys = ledger.dev_accounts()
    _, _, token = await deploy_contracts(
        ledger,
        keys[0],
        mint={keys[1].address: 10**6, keys[2].address: 10**6},
        telemetry_anchor=False,
        market=False,
    )
    return Rig(ledger, token, keys[1], tmp_path / "transfer-sales.sqlite3")


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Rig]:
    async with EmbeddedLedger() as ledger:
        yield await _rig(ledger, tmp_path)


async def test_a_transfer_counts_once_it_has_its_confirmations_and_only_once(
    embedded: Rig,
) -> None:
    rig = embedded
    async with rig.sales() as sales:
        await sales.enable(rig.terms(confirmations=3))
        await rig.pay(35)
        assert await sales.poll_once() == []  # one confirmation
        await rig.mine(1)
        assert await sales.poll_once() == []  # two
        await rig.mine(1)
        [bought] = await sales.poll_once()  # three
        await sales.drain()
        assert (bought.amount, bought.sale.units, bought.sale.credit) == (35, 3, 5)
        assert rig.permits == [(bought.purchase_id, 3)]
        await rig.mine(2)
        assert await sales.poll_once() == []  # read again, counted before
        [listed] = await sales.purchases()
        assert (listed.delivered, listed.sender) == (3, rig.payer.address)


async def test_the_credit_of_an_overpayment_tops_up_the_next_transfer(embedded: Rig) -> None:
    rig = embedded
    async with rig.sales() as sales:
        await sales.enable(rig.terms(confirmations=1))
        await rig.pay(35)
        await rig.pay(5)
        first, second = await sales.poll_once()
        assert (first.sale.units, first.sale.credit) == (3, 5)
        assert (second.sale.units, second.sale.credit) == (1, 0)


async def test_a_restart_resumes_at_the_cursor_and_counts_nothing_twice(embedded: Rig) -> None:
    rig = embedded
    async with rig.sales() as sales:
        await sales.enable(rig.terms(confirmations=2))
        await rig.pay(20)
        await rig.mine(1)
        [first] = await sales.poll_once()
        await sales.drain()
        cursor = sales.cursor
    await rig.pay(40)  # while the node is down
    await rig.mine(1)
    async with rig.sales() as again:
        assert again.cursor == cursor
        [second] = await again.poll_once()
        await again.drain()
        assert second.sale.units == 4
        await rig.mine(3)
        assert await again.poll_once() == []
        bought = await again.purchases()
    assert [p.purchase_id for p in bought] == [first.purchase_id, second.purchase_id]
    assert sorted(units for _, units in rig.permits) == [2, 4]


async def test_a_purchase_not_delivered_before_a_stop_is_commanded_again_at_start(
    embedded: Rig, tmp_path: Path
) -> None:
    rig = embedded
    parked: list[bytes] = []

    def unplugged(device: Address, service: str, session: bytes) -> Supply:
        parked.append(session)
        raise_device_away()
        raise AssertionError

    async with TransferSales(
        rig.ledger, TransferSaleStore(rig.path), unplugged, follow=False
    ) as sales:
        await sales.enable(rig.terms(confirmations=1))
        await rig.pay(30)
        [bought] = await sales.poll_once()
        assert parked == [bought.purchase_id]  # its device was not on the bus
    async with rig.sales() as again:
        await again.drain()
        assert rig.permits == [(bought.purchase_id, 3)]
        [done] = await again.purchases()
        assert done.delivered == 3


def raise_device_away() -> None:
    from m2mpay.errors import DeviceError

    raise DeviceError("unknown_device", "the lamp is not on the bus")


async def test_a_reorganisation_that_drops_an_unconfirmed_transfer_never_counts_it(
    anvil_node: AnvilNode, tmp_path: Path
) -> None:
    async with RpcLedger(anvil_node.url, dev_keys=dev_keys()) as ledger:
        rig = await _rig(ledger, tmp_path)
        async with rig.sales() as sales:
            await sales.enable(rig.terms(confirmations=3))
            dropped_in = await rig.pay(70)
            await rig.mine(1)
            assert await sales.poll_once() == []  # two confirmations: not yet
            await reorg_from(ledger, dropped_in)  # the transfer is gone with its block
            await rig.mine(4)
            assert await sales.poll_once() == []
            # Another wallet: the first one's dropped nonce is a gap Anvil waits on.
            kept_in = await rig.pay(30, ledger.dev_accounts()[2])
            await rig.mine(2)
            [bought] = await sales.poll_once()
            assert (bought.block_number, bought.amount) == (kept_in, 30)
            assert await rig.token.balance_of(DEVICE) == 30


async def test_a_counted_transfer_moved_to_another_block_by_a_reorganisation_counts_once(
    anvil_node: AnvilNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deeper than its confirmations: the follower reads again from the fork, finds the
    same transaction in its new block, and knows it by transaction and position."""
    async with RpcLedger(anvil_node.url, dev_keys=dev_keys()) as ledger:
        rig = await _rig(ledger, tmp_path)
        async with rig.sales() as sales:
            await sales.enable(rig.terms(confirmations=1))
            first_in = await rig.pay(50)
            await rig.mine(1)
            [bought] = await sales.poll_once()
            await reorg_from(ledger, first_in)
            await ledger.resend_dropped(first_in - 1)  # the same signed bytes, again
            receipt = await ledger.wait_for_receipt(bought.tx_hash)
            assert receipt.block_number >= first_in
            await rig.mine(2)
            assert await sales.poll_once() == []
            assert "were replaced: reading from" in caplog.text  # read again from the fork
            assert [p.purchase_id for p in await sales.purchases()] == [bought.purchase_id]


async def test_a_withdrawn_offer_counts_no_more_transfers_and_stays_so_after_a_restart(
    embedded: Rig,
) -> None:
    rig = embedded
    async with rig.sales() as sales:
        terms = await sales.enable(rig.terms(confirmations=1))
        await rig.pay(20)
        [bought] = await sales.poll_once()
        await sales.disable(terms.offer_id)
        await rig.pay(30)
        assert await sales.poll_once() == []
    async with rig.sales() as again:
        assert again.terms() == []
        await rig.pay(40)
        assert await again.poll_once() == []
        assert [p.purchase_id for p in await again.purchases()] == [bought.purchase_id]
