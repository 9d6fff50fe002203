"""How a node is set up: its codec, whom it accepts channels from, its clocks and
limits, and the protocol's own settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from m2mpay.channel.context import ProtocolConfig
from m2mpay.channel.messages import ChannelTerms
from m2mpay.node.peers import PeersConfig
from m2mpay.wire import codec_by_name

__all__ = ["AcceptPolicy", "NodeConfig"]

AcceptPolicy = Callable[[ChannelTerms], bool]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    codec: str = "cbor"
    accept: AcceptPolicy | bool = True  # which proposals to accept (True: all)
    max_in_flight: int = 4096  # unacknowledged payments per channel before pay() waits
    tick_interval_s: float = 1.0
    snapshot_every: int = 50_000  # records between snapshots
    proposal_ttl_ms: int = 60_000
    challenge_period: int = 3600  # seconds, for channels we propose
    start_block: int = 0  # where a new node starts reading hub events
    reconnect_delay_s: float = 0.5
    reconnect_max_delay_s: float = 10.0
    handshake_timeout_s: float = 10.0
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)

    @property
    def peers(self) -> PeersConfig:
        """How the node talks to its peers: the part of these settings `Peers` takes."""
        return PeersConfig(
            codec_by_name(self.codec),
            self.handshake_timeout_s,
            self.reconnect_delay_s,
            self.reconnect_max_delay_s,
        )
