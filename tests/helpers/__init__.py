"""Code the tests share, one module per concept; pytest fixtures stay in tests/conftest.py."""
