"""pkgrepo: source-built package repository and image-closure minimizer."""

__version__ = "0.1.0"
