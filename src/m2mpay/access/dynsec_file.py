"""The dynamic-security plugin's file of the node's own broker, changed while that
broker is stopped: `withdraw_reads`.

A broker restarted after its node died loads the grants as they stood at the death,
a grant whose paid time ended meanwhile among them, and listens at once; until the
node's `GrantKeeper` has revoked it, a reader and the plug that both connect could
pass it a message after its end (`m2mpay torture crash --phase grant.broker` saw it).
So the node's broker starts with every client's read access withdrawn, and the
keeper's reconciliation gives back the grants still paid: fail closed, for the
moments of a restart, never a leak. Write access (the devices') and the public
topics (their own role) are kept; the node's relay makes its client afresh anyway.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from m2mpay.access.dynsec import CLIENT_ROLE_PREFIX
from m2mpay.errors import AccessError

__all__ = ["withdraw_reads"]

READ_ACLS: Final = frozenset({"subscribePattern", "subscribeLiteral", "publishClientReceive"})


def withdraw_reads(dynsec_file: Path) -> int:
    """Drop every read ACL of our clients' roles from the file of a stopped broker;
    how many roles lost one. A file that is missing has nothing to withdraw."""
    try:
        data: dict[str, Any] = json.loads(dynsec_file.read_text())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        raise AccessError("broker_failed", f"cannot read {dynsec_file}: {exc}") from None
    changed = 0
    for role in data.get("roles", []):
        if not str(role.get("rolename", "")).startswith(CLIENT_ROLE_PREFIX):
            continue
        acls = role.get("acls", [])
        kept = [acl for acl in acls if acl.get("acltype") not in READ_ACLS]
        if len(kept) != len(acls):
            role["acls"] = kept
            changed += 1
    if changed:
        partial = dynsec_file.with_suffix(".json.withdrawn")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(dynsec_file)
    return changed
