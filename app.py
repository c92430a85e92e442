"""Thin entry point: `python app.py [serve options]` starts the same server as `transcriber`."""

from transcriber.cli import main

if __name__ == "__main__":
    main(["serve", *__import__("sys").argv[1:]])
