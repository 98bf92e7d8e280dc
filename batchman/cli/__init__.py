"""The command line face: click commands that parse, call the shared actions and print."""
