"""`python -m daemon` is `relationd`."""

from daemon.cli import main

main()
