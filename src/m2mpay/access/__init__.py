"""Paid access: who may read what, for how long, on a broker the node administers.

A buyer pays over a channel (a metered session on a feed's offer); once the payment
is durable at the seller, the seller's `Broker` lets the buyer's MQTT client read the
feed's live topic until the paid time ends, and takes it back the moment it does.
The HTTP paywall joins this package later.
"""

from m2mpay.access.broker import Broker, MemoryBroker, TopicAccess
from m2mpay.access.dynsec import DynsecBroker
from m2mpay.access.mosquitto import BrokerAddress, ManagedMosquitto

__all__ = [
    "Broker",
    "BrokerAddress",
    "DynsecBroker",
    "ManagedMosquitto",
    "MemoryBroker",
    "TopicAccess",
]
