"""Running jobs: the coordinator (runner) with its queue, attempts and slot loops; supervise
(cancel, grace period, watchdog limits); events (a job's progress applied to its task);
recovery after a restart; retention of old finished tasks; jobspec (the Job handed to a
worker, with the hotwords the server adds). It hands jobs to an engine and never parses a
request or renders a transcript."""
