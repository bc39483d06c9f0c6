"""Subcommands of sepia-stt that are not the server itself."""
