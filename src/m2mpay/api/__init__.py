"""The node's HTTP API (FastAPI, OpenAPI): routes, models, views, auth, one error shape,
and the payment fast path (`fast`)."""

from m2mpay.api.app import create_app
from m2mpay.api.auth import Credentials, new_token
from m2mpay.api.gateway import EventHub, Gateway

__all__ = ["Credentials", "EventHub", "Gateway", "create_app", "new_token"]
