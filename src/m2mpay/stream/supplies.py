"""The devices of a session manager's sessions: what makes them (the offers we sell
under, the feed-back factory for purchases that are reversed) and the ones running,
per session and direction of flow."""

from __future__ import annotations

import logging
from collections.abc import Callable

from m2mpay.stream.offer import Offer
from m2mpay.stream.state import SessionPhase, SessionState
from m2mpay.stream.supply import Supply, SupplyFactory, SupplyRequest, SupplyVet

__all__ = ["Supplies"]

log = logging.getLogger("m2mpay.stream")

# A device's reading: (session id, reversed flow, units delivered so far).
MeterCallback = Callable[[bytes, bool, int], None]


class Supplies:
    def __init__(self, feed_back: SupplyFactory | None, meter: MeterCallback) -> None:
        self._feed_back = feed_back
        self._meter = meter
        self._offers: dict[bytes, tuple[Offer, SupplyFactory]] = {}
        self._vets: dict[bytes, SupplyVet] = {}
        # In memory: after a restart the manager's own `feed_back` stands in.
        self._feed_back_for: dict[bytes, SupplyFactory] = {}
        self._running: dict[tuple[bytes, bool], Supply] = {}

    # -- what makes them

    def publish(self, offer: Offer, factory: SupplyFactory, vet: SupplyVet | None = None) -> None:
        self._offers[offer.offer_id] = (offer, factory)
        if vet is not None:
            self._vets[offer.offer_id] = vet

    def withdraw(self, offer_id: bytes) -> None:
        self._offers.pop(offer_id, None)
        self._vets.pop(offer_id, None)

    def problem(self, request: SupplyRequest) -> str:
        """Why the offer's device refuses a request (empty: it does not). A vet that
        fails refuses: a request nobody could check is not accepted."""
        vet = self._vets.get(request.offer.offer_id)
        if vet is None:
            return ""
        try:
            return vet(request) or ""
        except Exception:
            log.exception("the device's check of session 0x%s failed", request.session_id.hex())
            return "the seller's device could not check the request"

    def offers(self) -> list[Offer]:
        return [offer for offer, _ in self._offers.values()]

    def offer(self, offer_id: bytes) -> Offer | None:
        entry = self._offers.get(offer_id)
        return entry[0] if entry is not None else None

    def feed_back_for(self, session_id: bytes, factory: SupplyFactory) -> None:
        """The device through which we deliver if this purchase is reversed."""
        self._feed_back_for[session_id] = factory

    # -- the running ones

    def running(self, session_id: bytes, reversed_flow: bool) -> Supply | None:
        return self._running.get((session_id, reversed_flow))

    async def of(self, state: SessionState, reversed_flow: bool) -> Supply | None:
        """The device delivering a direction of a session, made and started on first use."""
        key = (state.session_id, reversed_flow)
        supply = self._running.get(key)
        if supply is not None:
            return supply
        if reversed_flow:
            factory = self._feed_back_for.get(state.session_id, self._feed_back)
        else:
            entry = self._offers.get(state.offer.offer_id)
            factory = entry[1] if entry is not None else None
        if factory is None:
            log.warning(
                "no device for session 0x%s (%s); it delivers nothing until one is published",
                state.session_id.hex(),
                "backward" if reversed_flow else "forward",
            )
            return None
        supply = factory(
            SupplyRequest(
                state.session_id, state.offer, state.peer, reversed_flow, state.supply_terms
            )
        )
        self._running[key] = supply
        session_id, meter = state.session_id, self._meter
        await supply.start(
            lambda units: meter(session_id, reversed_flow, units),
            state.flow(reversed_flow).units,
        )
        return supply

    async def resume(self, state: SessionState) -> None:
        """After a restart: a live session's devices switched back on at what it was
        permitted, and what they delivered meanwhile read."""
        for reversed_flow in (False, True):
            if state.delivers(reversed_flow) and state.phase is not SessionPhase.REQUESTED:
                supply = await self.of(state, reversed_flow)
                flow = state.flow(reversed_flow)
                if supply is not None:
                    supply.permit(flow.allowed)
                    if supply.delivered > flow.units:
                        self._meter(state.session_id, reversed_flow, supply.delivered)

    async def stop(self, session_id: bytes) -> None:
        """Switch a stopped session's devices off and forget them."""
        self._feed_back_for.pop(session_id, None)
        for reversed_flow in (False, True):
            supply = self._running.pop((session_id, reversed_flow), None)
            if supply is not None:
                await supply.stop()

    async def stop_all(self) -> None:
        """The manager stops; the sessions resume after a restart."""
        running, self._running = list(self._running.values()), {}
        for supply in running:
            await supply.suspend()
