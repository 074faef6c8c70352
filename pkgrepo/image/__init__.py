"""Root filesystems and images."""
