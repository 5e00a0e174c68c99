"""``growbin.services.<domain>:app`` per API node, ``all:app`` in development."""
