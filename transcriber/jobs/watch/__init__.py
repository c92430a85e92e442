"""Watched folders (--watch DIR): audio files dropped there become tasks of the built-in owner
`watch`, and their outputs are written beside them (or into --watch-out).

outputs (where each output goes, written atomically), folder (the watch: inotify through
watchfiles, a file taken once it stops growing, what was seen kept in SQLite).
"""
