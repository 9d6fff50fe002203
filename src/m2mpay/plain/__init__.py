"""Plain-data form of protocol values, shared by the wire codecs and the store (see
`m2mpay.plain.codec`)."""

from m2mpay.plain.codec import (
    from_plain,
    plain_type,
    registered_types,
    to_plain,
    type_name,
)
from m2mpay.plain.scalars import Blob, Bytes32, Text, Uint53, Uint64, Uint256

__all__ = [
    "Blob",
    "Bytes32",
    "Text",
    "Uint53",
    "Uint64",
    "Uint256",
    "from_plain",
    "plain_type",
    "registered_types",
    "to_plain",
    "type_name",
]
