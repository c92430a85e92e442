"""Known voices: profiles of people, each speaker of a finished diarization matched to them."""
