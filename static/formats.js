// Generated from transcriber/formats/__init__.py; do not edit. Regenerate with
//   python -m transcriber.formats --js > static/formats.js

// [format name, the name the page shows], in the order the page lists them.
export const FORMATS = Object.freeze([
  ["json", "JSON"],
  ["txt", "TXT"],
  ["srt", "SRT"],
  ["vtt", "VTT"],
  ["tsv", "TSV"],
  ["md", "Markdown"],
  ["docx", "DOCX"],
]);
