"""Layer 7: the ``aiodimse`` command line."""

__all__: list[str] = []
