"""Layer 7: the ``aiodimse`` command line."""
