"""API credentials: one bearer token per node, made on first run and shown once.

Only its SHA-256 is kept (in `<data dir>/api-token.sha256`), so a copy of the data
dir does not hand out the token. Anything that moves money or changes state needs
it; reads need it too unless the node is configured with public reads. The
storefront (node info, offers) is always public: buyers discover offers there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from m2mpay.api.errors import ApiError

__all__ = [
    "BEARER",
    "OWNER_ONLY",
    "TOKEN_FILE",
    "BearerToken",
    "Credentials",
    "GuardedRoutes",
    "new_token",
]

TOKEN_FILE: Final = "api-token.sha256"
BEARER: Final = "bearer"
"""The token's security scheme in the OpenAPI schema: Swagger UI's Authorize button."""
OWNER_ONLY: Final = "x-m2mpay-owner-only"
"""Marks a GET in the schema that needs the token even with public reads (`owner_read`)."""

# Declares the token in the schema of every route that checks it; it refuses nothing
# itself (`Credentials.check` does, as it does for the raw-ASGI fast path).
BearerToken = Annotated[
    HTTPAuthorizationCredentials | None,
    Security(
        HTTPBearer(
            scheme_name=BEARER,
            auto_error=False,
            description="The node's API token, printed once when the node first starts "
            "(`m2mpay node`); the CLI reads it from `M2MPAY_TOKEN` or `--token`.",
        )
    ),
]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(data_dir: Path) -> str:
    """Make a new token, keep its hash (replacing any older one), return it to show once."""
    token = "m2m_" + secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TOKEN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_digest(token) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return token


class Credentials:
    """Checks bearer tokens against the stored hash."""

    def __init__(self, token_hash: str, *, public_reads: bool = False) -> None:
        self._hash = token_hash
        self.public_reads = public_reads

    @classmethod
    def for_token(cls, token: str, *, public_reads: bool = False) -> Credentials:
        return cls(_digest(token), public_reads=public_reads)

    @classmethod
    def load(cls, data_dir: Path, *, public_reads: bool = False) -> Credentials | None:
        path = data_dir / TOKEN_FILE
        if not path.exists():
            return None
        return cls(path.read_text().strip(), public_reads=public_reads)

    def check(self, request: Request) -> None:
        self.check_header(request.headers.get("authorization"))

    def check_header(self, header: str | bytes | None) -> None:
        """Raise a 401 `ApiError` unless `header` is `Bearer <our token>`."""
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthorized", "a bearer token is required")
        if not hmac.compare_digest(_digest(token.strip()), self._hash):
            raise ApiError(401, "unauthorized", "the bearer token is not valid")

    async def writer(self, request: Request, _: BearerToken) -> None:
        """FastAPI dependency for anything that moves money or changes state."""
        self.check(request)

    async def reader(self, request: Request, _: BearerToken) -> None:
        """FastAPI dependency for reads: open when reads are public."""
        if not self.public_reads:
            self.check(request)


Route = TypeVar("Route", bound=Callable[..., Any])


class GuardedRoutes:
    """A router of the API (its routes tagged `tags` in the schema) whose routes say
    who may call them: `read` routes need the token unless reads are public, `write`
    routes always need it. Public routes go on `router` itself."""

    def __init__(self, credentials: Credentials, *tags: str) -> None:
        self.router = APIRouter(tags=list(tags))
        self._reader = Depends(credentials.reader)
        self._writer = Depends(credentials.writer)

    def read(self, path: str, model: type[BaseModel], **route: Any) -> Callable[[Route], Route]:
        """A GET route answering `model`."""
        return self.router.get(path, response_model=model, dependencies=[self._reader], **route)

    def owner_read(self, path: str, **route: Any) -> Callable[[Route], Route]:
        """A GET route whose answer holds a secret (a stream's key): the token always,
        public reads or not, as a write; marked `OWNER_ONLY` in the schema."""
        return self.router.get(
            path, dependencies=[self._writer], openapi_extra={OWNER_ONLY: True}, **route
        )

    def write(
        self, path: str, model: type[BaseModel] | None, *, method: str = "POST", **route: Any
    ) -> Callable[[Route], Route]:
        """A POST (or `method`) route answering `model`."""
        return self.router.api_route(
            path, methods=[method], response_model=model, dependencies=[self._writer], **route
        )
