"""The signed repository: keys, publishing, serving, and the verifying client."""
