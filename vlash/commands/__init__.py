"""One module per ``vlash`` subcommand."""
