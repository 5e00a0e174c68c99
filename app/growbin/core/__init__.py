"""What every domain needs: settings, databases, Redis, errors, security, observability."""
