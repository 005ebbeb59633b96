"""The `astra` command line: one module per group of subcommands."""
