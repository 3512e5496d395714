"""The package's version, in a module of its own: every layer may read it (the CLI's
``--version``, reports, exported events) without importing the package root, and
``pyproject.toml`` reads it from here (``[tool.setuptools.dynamic]``)."""

__version__ = "0.1.0"
