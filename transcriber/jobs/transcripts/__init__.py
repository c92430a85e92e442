"""Work on finished transcripts: revisions (the model's output as revision 0, each edit a new
revision, stored as a full copy or a delta), edits (the changes as plain functions of the
data), search (FTS5 queries and the catch-up import), rediarize (diarization alone again),
results (a finished run's output read back). Rendering them as files is transcriber/formats.
It never imports engines or intake (a contract)."""
