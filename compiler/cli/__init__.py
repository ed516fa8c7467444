"""The `spatten` command line."""
