"""Where a device plugs in: the deliverer's side of one direction of a session.

A session grants its deliverer a permit, a number of units in all; the device
delivers while its meter is below the permit and stops there (a contactor opens,
a lamp goes dark, a feed holds its messages). Whenever its meter advances it
reports the cumulative units delivered in the session. The session machine does
the rest: reports, payments, the window. `m2mpay.devices.simulated` has simulated
devices; a real one implements `Supply` the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from m2mpay.crypto import Address
from m2mpay.stream.offer import Offer

__all__ = ["MeterReport", "PermitCount", "Supply", "SupplyFactory", "SupplyRequest", "SupplyVet"]

MeterReport = Callable[[int], None]


class Supply(ABC):
    """A metered device delivering one direction of one session; see the module docstring."""

    @abstractmethod
    async def start(self, report: MeterReport, delivered: int) -> None:
        """Begin metering. `delivered` is where the session's count stands: non-zero
        when a session resumes after a restart, so the count never goes back."""

    @abstractmethod
    def permit(self, units: int) -> None:
        """Deliver at most `units` in all. A permit grows while a session runs; when
        the session stops it drops to what was delivered: stop at once."""

    @abstractmethod
    async def stop(self) -> None:
        """The session ended: stop delivering and release the device."""

    async def suspend(self) -> None:
        """The seller's node is stopping while the session goes on (it resumes after
        the restart). Most devices stop delivering, as in `stop`; one whose delivery
        keeps its own durable account (a feed's grant) lets it be."""
        await self.stop()

    @property
    @abstractmethod
    def delivered(self) -> int:
        """The units delivered in this session so far, as the meter reads now."""


class PermitCount:
    """A device's count of units delivered, never past its permit, each new count
    reported at once: what a simulated meter keeps (`m2mpay.devices.simulated`) and a
    feed's gate by the message (`m2mpay.access.relay`), where a unit is a message that
    passes (`admit`). It counts only while open: from `open` to `close`."""

    def __init__(self) -> None:
        self._report: MeterReport | None = None
        self._units = 0
        self._permit = 0

    @property
    def delivered(self) -> int:
        return self._units

    @property
    def permitted(self) -> int:
        return self._permit

    @property
    def running(self) -> bool:
        return self._report is not None and self._units < self._permit

    def open(self, report: MeterReport, delivered: int) -> None:
        """Count from `delivered` (where the session's count stands) on, reporting to `report`."""
        self._report = report
        self._units = max(self._units, delivered)

    def close(self) -> None:
        self._report = None

    def permit(self, units: int) -> None:
        # Never below what was delivered: a permit that drops is a stop.
        self._permit = max(units, self._units)

    def admit(self) -> bool:
        """Count one unit out if the permit allows; False: hold it back (or drop it)."""
        if not self.running:
            return False
        self._reach(self._units + 1)
        return True

    def _reach(self, units: int) -> None:
        units = min(units, self._permit)
        if units > self._units and self._report is not None:
            self._units = units
            self._report(units)


@dataclass(frozen=True, slots=True)
class SupplyRequest:
    """What a device factory is told about the session it will supply. `terms` is
    what the buyer told the device with its request (`SessionRequest.supply_terms`)."""

    session_id: bytes
    offer: Offer
    peer: Address
    reversed: bool  # the backward direction: the buyer feeds back
    terms: bytes = b""


SupplyFactory = Callable[[SupplyRequest], Supply]
# Why a device would not supply a session requested on its offer (None: it would). Asked
# before the seller accepts, so a buyer never pays for what the device cannot deliver.
SupplyVet = Callable[[SupplyRequest], str | None]
