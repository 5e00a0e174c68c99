"""PEM keys survive the one-line-per-variable env file the app_systemd role writes."""

from growbin.core.security import generate_private_key_pem, public_key_pem
from growbin.core.settings import Settings


def test_escaped_pem_keys_are_decoded(monkeypatch):
    private = generate_private_key_pem()
    public = public_key_pem(private)
    monkeypatch.setenv("GROWBIN_AUTH__JWT_PRIVATE_KEY", private.strip().replace("\n", "\\n"))
    monkeypatch.setenv("GROWBIN_AUTH__JWT_PUBLIC_KEY", public.strip().replace("\n", "\\n"))
    settings = Settings()
    assert settings.auth.jwt_private_key.get_secret_value() == private.strip()
    assert settings.auth.jwt_public_key == public.strip()
    assert "\n" in settings.auth.jwt_public_key
