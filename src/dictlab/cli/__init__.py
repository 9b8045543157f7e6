"""Command-line interface (``dictlab``)."""
