"""Growbin: AI waste classification and recycling coach."""

__version__ = "0.1.0"
