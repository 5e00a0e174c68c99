"""The auth API service (`uvicorn growbin.services.auth:app`)."""

from growbin.core.app import create_app, load_domain

app = create_app([load_domain("auth")], service="auth")
