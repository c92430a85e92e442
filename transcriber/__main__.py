"""`python -m transcriber ...` is the `transcriber` command."""

from .cli import main

main()
