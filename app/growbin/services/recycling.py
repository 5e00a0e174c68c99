"""The recycling API service (`uvicorn growbin.services.recycling:app`)."""

from growbin.core.app import create_app, load_domain

app = create_app([load_domain("recycling")], service="recycling")
