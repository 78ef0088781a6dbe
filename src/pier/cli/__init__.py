"""The ``pier`` command."""
