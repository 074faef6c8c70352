"""The package archive format: metadata, writing, reading and safe extraction."""
