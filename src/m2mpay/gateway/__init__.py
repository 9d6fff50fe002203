"""The node's HTTP API (FastAPI, OpenAPI) and, with it, the device WebSocket bus."""

from m2mpay.gateway.app import create_app
from m2mpay.gateway.auth import Credentials, new_token
from m2mpay.gateway.context import EventHub, Gateway

__all__ = ["Credentials", "EventHub", "Gateway", "create_app", "new_token"]
