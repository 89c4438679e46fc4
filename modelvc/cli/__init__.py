"""The command line: thin click commands that parse, call modelvc.ops, and render."""
