"""`python -m sllen` is the `sllen` command."""

from sllen.cli.main import app

app(prog_name="sllen")
