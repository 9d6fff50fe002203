"""Provenance: what devices report, kept so that anyone can check it later.

- The device bus's telemetry, stored as it arrives, Merkle-batched and anchored on chain
  (`TelemetryBatcher`), each record provable against its anchored root.
- Provenance streams (`ProvenanceStream`): an author's signed, hash-chained records,
  public, restricted to a key or to subscribers, written durably by `StreamWriter` into
  a `StreamStore` and checked end to end by `verify`; their heads anchored on chain by
  the same mechanism (`StreamAnchorer`), each message provable (`AnchorProof`,
  `verify_anchor`); shared by QR code (`qr`) and read in a browser by the web reader
  (`reader_app` serves it).
"""

from m2mpay.provenance.anchor_proof import (
    AnchorCheck,
    AnchorProblem,
    AnchorProof,
    decode_anchor_proof,
    verify_anchor,
)
from m2mpay.provenance.anchoring import STREAMS_SOURCE, AnchorBatcher, AnchorConfig
from m2mpay.provenance.qr import QrFormatError, StreamCode, parse_stream_code
from m2mpay.provenance.records import StreamBatch, StreamHead, TelemetryRecord, TelemetryStore
from m2mpay.provenance.stream_anchor import StreamAnchorer
from m2mpay.provenance.stream_file import export_stream, import_stream, read_stream_file
from m2mpay.provenance.stream_format import (
    AccessMode,
    MessageKind,
    StreamInvalid,
    StreamMessage,
    StreamRoot,
    decode_message,
    decode_root,
)
from m2mpay.provenance.stream_memory import MemoryStreamDisk, MemoryStreamStore
from m2mpay.provenance.stream_postgres import PostgresStreamStore
from m2mpay.provenance.stream_records import (
    KeyGrant,
    MeterRecord,
    MeterUnit,
    NoteRecord,
    PaymentRecord,
    PriceRecord,
    ReceiptRecord,
    SessionRecord,
    StreamRecord,
    Totals,
)
from m2mpay.provenance.stream_sqlite import SqliteStreamStore
from m2mpay.provenance.stream_store import StreamStore
from m2mpay.provenance.stream_verify import (
    Problem,
    ProblemCode,
    ReadKey,
    Verified,
    VerifiedMessage,
    verify,
)
from m2mpay.provenance.streams import ProvenanceStream, StreamWriter
from m2mpay.provenance.telemetry import (
    TelemetryBatcher,
    TelemetryConfig,
    TelemetryProof,
    verify_anchored,
)

__all__ = [
    "STREAMS_SOURCE",
    "AccessMode",
    "AnchorBatcher",
    "AnchorCheck",
    "AnchorConfig",
    "AnchorProblem",
    "AnchorProof",
    "KeyGrant",
    "MemoryStreamDisk",
    "MemoryStreamStore",
    "MessageKind",
    "MeterRecord",
    "MeterUnit",
    "NoteRecord",
    "PaymentRecord",
    "PostgresStreamStore",
    "PriceRecord",
    "Problem",
    "ProblemCode",
    "ProvenanceStream",
    "QrFormatError",
    "ReadKey",
    "ReceiptRecord",
    "SessionRecord",
    "SqliteStreamStore",
    "StreamAnchorer",
    "StreamBatch",
    "StreamCode",
    "StreamHead",
    "StreamInvalid",
    "StreamMessage",
    "StreamRecord",
    "StreamRoot",
    "StreamStore",
    "StreamWriter",
    "TelemetryBatcher",
    "TelemetryConfig",
    "TelemetryProof",
    "TelemetryRecord",
    "TelemetryStore",
    "Totals",
    "Verified",
    "VerifiedMessage",
    "decode_anchor_proof",
    "decode_message",
    "decode_root",
    "export_stream",
    "import_stream",
    "parse_stream_code",
    "read_stream_file",
    "verify",
    "verify_anchor",
    "verify_anchored",
]
