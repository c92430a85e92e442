"""Taking work in: admission (queue, uploads in progress, free disk), upload (bytes streamed to
the task's folder with a size cap and progress), ingest (store, probe, fail bad input). It
takes plain async byte streams: parsing the HTTP request is the web layer's. It never imports
running, engines or transcripts (a contract)."""
