"""Scans: photo in, disposal guidance out (API here; image and model work in growbin.worker)."""
