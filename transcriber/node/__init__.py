"""The node side of the dask executor: what runs on a GPU box under `transcriber node`.

Imports the worker (to run a job in a child process) but nothing of web, jobs or store: a node
keeps no database and serves no API.
"""
