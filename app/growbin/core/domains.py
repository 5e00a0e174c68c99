"""The domain names: one service, one database, one URL prefix each."""

DOMAINS: tuple[str, ...] = ("auth", "users", "scans", "recycling", "locations", "chat")


def api_prefix(domain: str) -> str:
    return f"/api/v1/{domain}"
