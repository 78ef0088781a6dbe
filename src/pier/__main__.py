"""``python -m pier``: the same as the ``pier`` command."""

from pier.cli.main import main

main()
