"""The locations API service (`uvicorn growbin.services.locations:app`)."""

from growbin.core.app import create_app, load_domain

app = create_app([load_domain("locations")], service="locations")
