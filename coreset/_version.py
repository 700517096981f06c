"""The library's version, in a module of its own at the bottom of the layers:
modules read it from here, never from the package face ``coreset/__init__.py``
(which imports them). Keep it equal to ``version`` in pyproject.toml."""

__version__ = "0.1.0"
