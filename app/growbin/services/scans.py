"""The scans API service (`uvicorn growbin.services.scans:app`)."""

from growbin.core.app import create_app, load_domain

app = create_app([load_domain("scans")], service="scans")
