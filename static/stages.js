// Generated from transcriber/protocol/stages.py; do not edit. Regenerate with
//   python -m transcriber.protocol.stages --js > static/stages.js

// The stage values of the protocol, in pipeline order.
export const STAGE = Object.freeze({
  "UPLOADING": "uploading",
  "QUEUED": "queued",
  "TRANSCRIBING": "transcribing",
  "ALIGNING": "aligning",
  "DIARIZING": "diarizing",
  "COMPLETE": "complete",
  "FAILED": "failed",
  "CANCELLED": "cancelled"
});

// Stage value -> the name a person reads.
export const STAGE_NAMES = Object.freeze({
  "uploading": "Uploading",
  "queued": "Queued",
  "transcribing": "Transcribing",
  "aligning": "Aligning",
  "diarizing": "Diarizing",
  "complete": "Complete",
  "failed": "Failed",
  "cancelled": "Cancelled"
});

export const TERMINAL = new Set(["complete", "failed", "cancelled"]);
