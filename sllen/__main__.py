"""`python -m sllen` is the `sllen` command."""

from sllen.cli.main import main

main()
