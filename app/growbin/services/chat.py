"""The chat API service (`uvicorn growbin.services.chat:app`)."""

from growbin.core.app import create_app, load_domain

app = create_app([load_domain("chat")], service="chat")
