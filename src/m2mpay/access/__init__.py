"""Paid access: who may read what, for how long, on a broker the node administers.

A buyer pays over a channel (a metered session on a feed's offer); once the payment
is durable at the seller, the seller's `Broker` lets the buyer's MQTT client read the
feed's live topic until the paid time ends, and takes it back the moment it does.
The HTTP 402 paywall (x402) is here too: `paywall.Paywall` asks for payment on priced
paths in each `schemes.Scheme` it is given (`exact.ExactEvm` today), settles it before
serving, and `proxy.UpstreamProxy` puts it in front of any HTTP service.
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
