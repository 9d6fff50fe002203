"""Keys, addresses, EIP-712 digests and signatures. Imports nothing else of m2mpay."""

from m2mpay.crypto.address import ZERO_ADDRESS, Address
from m2mpay.crypto.eip712 import (
    UINT256_MAX,
    Eip712Domain,
    TransferAuthorization,
    balance_proof_digest,
    balance_proof_typed_data,
    channel_domain,
    channel_id,
    permit_digest,
    permit_typed_data,
    session_receipt_digest,
    session_receipt_typed_data,
    settlement_digest,
    settlement_typed_data,
    watch_registration_digest,
    watch_registration_typed_data,
)
from m2mpay.crypto.hashing import keccak256
from m2mpay.crypto.keys import PrivateKey
from m2mpay.crypto.merkle import merkle_proof, merkle_root, verify_merkle_proof
from m2mpay.crypto.signature import Signature, recover_signer

__all__ = [
    "UINT256_MAX",
    "ZERO_ADDRESS",
    "Address",
    "Eip712Domain",
    "PrivateKey",
    "Signature",
    "TransferAuthorization",
    "balance_proof_digest",
    "balance_proof_typed_data",
    "channel_domain",
    "channel_id",
    "keccak256",
    "merkle_proof",
    "merkle_root",
    "permit_digest",
    "permit_typed_data",
    "recover_signer",
    "session_receipt_digest",
    "session_receipt_typed_data",
    "settlement_digest",
    "settlement_typed_data",
    "verify_merkle_proof",
    "watch_registration_digest",
    "watch_registration_typed_data",
]
