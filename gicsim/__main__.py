"""``python -m gicsim`` = the ``gicsim`` command."""

from gicsim.cli import main

main()
