"""Engines that run jobs: the executor contract (executor), the local worker processes
(local), the Dask cluster (dask_executor, dask_nodes, node_files: the files nodes read and
write through the coordinator), and engine (which builds the configured one). An engine only
runs what it is handed: it never imports intake or transcripts (a contract)."""
