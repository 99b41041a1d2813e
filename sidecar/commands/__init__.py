"""Subcommands of `arena`: each module defines HELP, register(parser) and execute(args)."""
