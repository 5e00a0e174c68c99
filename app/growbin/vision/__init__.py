"""Vision classifiers: a photo in, a knowledge-base category (or "can't tell") out."""
