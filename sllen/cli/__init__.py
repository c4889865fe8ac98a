"""Command-line interface: thin typer commands, one library call each."""
