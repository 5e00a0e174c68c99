"""All domains in one process, for development (``uvicorn growbin.services.all:app``), and
the one API reference of every service (``growbin openapi``)."""

from typing import Any

from growbin.core.app import create_app, load_domain

# Adding a domain to the development app is one entry here.
ALL_IN_ONE_DOMAINS = ("auth", "users", "recycling", "locations", "scans", "chat")

app = create_app([load_domain(name) for name in ALL_IN_ONE_DOMAINS], service="all")


API_SERVERS = (
    {"url": "https://api.growbin.app", "description": "production (the ALB)"},
    {"url": "https://localhost:8443", "description": "the local platform's edge (make up)"},
)


def api_reference() -> dict[str, Any]:
    """The OpenAPI document of every public route of the six services (docs/api/openapi.json).

    The edge routes ``/api/v1/<domain>`` to each domain's own service; health and metrics
    endpoints are per process and not routed, so they are not part of it.
    """
    document = app.openapi()
    return {
        **document,
        "info": {
            **document["info"],
            "title": "Growbin API",
            "description": "Every service behind the edge; see docs/api/README.md for the flows.",
        },
        "servers": list(API_SERVERS),
        "paths": {
            path: item for path, item in document["paths"].items() if path.startswith("/api/")
        },
    }
