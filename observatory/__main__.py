"""``python -m observatory``: the same as the ``observatory`` command."""

from observatory.cli import main

main()
