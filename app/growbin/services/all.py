"""All domains in one process, for development (``uvicorn growbin.services.all:app``)."""

from growbin.core.app import create_app, load_domain

# Adding a domain to the development app is one entry here.
ALL_IN_ONE_DOMAINS = ("auth", "users", "recycling", "locations", "scans", "chat")

app = create_app([load_domain(name) for name in ALL_IN_ONE_DOMAINS], service="all")
