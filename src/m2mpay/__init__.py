"""m2mpay: machines selling metered services to each other over EVM payment channels."""

import os as _os

# eth-hash picks pycryptodome first; pysha3 (installed with m2mpay) hashes about
# five times faster, which matters for the embedded EVM's tries. An explicit
# ETH_HASH_BACKEND from the user still wins.
_os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

__version__ = "0.1.0"

__all__ = ["__version__"]
