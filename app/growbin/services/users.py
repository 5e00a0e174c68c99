"""The users API service (`uvicorn growbin.services.users:app`)."""

from growbin.core.app import create_app, load_domain

app = create_app([load_domain("users")], service="users")
