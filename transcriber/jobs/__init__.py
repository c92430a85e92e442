"""Everything about a task's life, below HTTP and above SQL.

At the centre, `tasks` (Tasks: the only path by which a task changes, every change written and
then published), `hub` (each task's latest snapshot for every subscriber and long-poll) and
`options` (a client's options checked). Around it four sub-packages: `intake` takes an upload
in, `running` runs a queued task through an executor, `engines` are those executors, and
`transcripts` is the work on a finished transcript. Import rules between them are contracts in
setup.cfg; jobs never imports aiohttp, so it can be driven without a web server.
"""
