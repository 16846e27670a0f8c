"""cairn's HTTP service (FastAPI): `create_app` builds it over a `Cairn`; `cairn serve` runs it."""

from cairn.http.app import PUBLIC_ROUTES, ServiceLimits, create_app

__all__ = ["PUBLIC_ROUTES", "ServiceLimits", "create_app"]
