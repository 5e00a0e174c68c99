"""auth: credentials, tokens, login rate limits, JWKS."""
