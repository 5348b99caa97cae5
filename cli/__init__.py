"""The command line: `following` and its subcommands."""
