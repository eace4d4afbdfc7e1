"""``python -m shelfwise.cli``: the same as the ``shelfwise`` command."""

from shelfwise.cli import main

main()
