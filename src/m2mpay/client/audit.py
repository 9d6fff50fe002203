"""The audit report a node issues and signs (`POST /v1/audit`), as the bytes it answers:
the signed JSON (`m2mpay.provenance.audit_report.read_signed_report` reads it), the
HTML page or the PDF."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final, Literal

import httpx

from m2mpay.client.base import ApiBase, read_answer, refusal_from
from m2mpay.errors import NodeUnreachable

__all__ = ["AuditApi", "AuditFormat"]

AuditFormat = Literal["json", "html", "pdf"]
_SUFFIXES: Final[dict[str, AuditFormat]] = {
    ".json": "json",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
_ACCEPT: Final = {"json": "application/json", "html": "text/html", "pdf": "application/pdf"}


class AuditApi(ApiBase):
    async def audit(
        self,
        stream: bytes | str,
        *,
        format: AuditFormat = "json",
        from_ms: int | None = None,
        to_ms: int | None = None,
        interval_ms: int | None = None,
        credit_window: int | None = None,
        keys: dict[str, str] | None = None,
    ) -> bytes:
        """The report of the chain ending in `stream` (its id), signed by the node."""
        body: dict[str, object] = {
            "stream": stream if isinstance(stream, str) else "0x" + stream.hex(),
            "format": format,
        }
        for name, value in (
            ("from_ms", from_ms),
            ("to_ms", to_ms),
            ("interval_ms", interval_ms),
            ("credit_window", credit_window),
            ("keys", keys),
        ):
            if value is not None:
                body[name] = value
        what = "POST /v1/audit"
        headers = {"Accept": _ACCEPT[format]}
        try:
            async with self._http.stream(
                "POST", "/v1/audit", json=body, headers=headers
            ) as response:
                raw = await read_answer(response, what)
        except httpx.TransportError as exc:
            raise NodeUnreachable(f"POST {self.url}/v1/audit: {exc or type(exc).__name__}") from exc
        if not response.is_success:
            raise refusal_from(response.status_code, response.reason_phrase, raw)
        return raw

    async def save_audit(self, stream: bytes | str, path: Path, **options: Any) -> Path:
        """The report the node issues (`audit`'s options), written to `path` in the
        format its suffix names (.json, .html, .pdf), whole or not at all; returns
        `path`. What a demo calls at its end to leave the page for people to open."""
        chosen = _SUFFIXES.get(path.suffix.lower())
        if chosen is None:
            raise ValueError(f"{path.name}: a report is .json, .html or .pdf")
        content = await self.audit(stream, format=chosen, **options)
        tmp = path.with_name(path.name + ".tmp")
        await asyncio.to_thread(tmp.write_bytes, content)
        await asyncio.to_thread(tmp.replace, path)
        return path
