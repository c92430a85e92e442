"""Plain synchronous pipeline stages, run inside worker processes."""
