#!/usr/bin/env bash
# Builds tests/data/speech_en.wav (16 kHz mono, 16-bit) and its word-timing truth,
# tests/data/speech_en.words.tsv (word, start, end in seconds), and tests/data/speech_de.wav,
# a German sentence for language detection.
#
# Each word is spoken on its own by espeak-ng, trimmed to its audible part, and joined to the
# next one directly or after a silence of known length, so every word's start and end are
# known to the sample. That makes the file a ground truth for word alignment, not only for
# transcription. Most words follow each other without a pause, as in running speech; a few
# pauses and the sentence breaks check that pauses do not pull word boundaries.
# Needs espeak-ng and sox. Deterministic: the same tools give the same file.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
out_wav="${1:-$here/tests/data/speech_en.wav}"
out_tsv="${out_wav%.wav}.words.tsv"
rate=16000
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

sentences=(
  "The quick brown fox jumps over the lazy dog."
  "Please call Stella and ask her to bring these things with her from the store."
  "We will meet again tomorrow morning at the old library."
  "She sells fresh bread every Sunday near the harbor."
)
# Gaps between words, cycled; mostly none, and varied so an aligner cannot score well by
# spacing words evenly.
word_gaps=(0 0 0.15 0 0.02 0 0 0.3 0 0.01 0 0.08 0)
sentence_gap=0.9
lead=0.5

silence() {  # silence FILE SECONDS
  sox -D -n -r "$rate" -c 1 -b 16 "$1" trim 0 "$2"
}

parts=()
printf 'word\tstart\tend\n' >"$out_tsv"
silence "$tmp/lead.wav" "$lead"
parts+=("$tmp/lead.wav")
samples=$(soxi -s "$tmp/lead.wav")
n=0
for s in "${!sentences[@]}"; do
  read -r -a words <<<"${sentences[$s]}"
  for w in "${!words[@]}"; do
    word="${words[$w]}"
    clean="${word%[.,]}"
    n=$((n + 1))
    raw="$tmp/raw$n.wav"
    cut="$tmp/word$n.wav"
    espeak-ng -v en-us -s 165 -w "$raw" "$clean"
    # Trim espeak's own lead-in and tail so the word starts at its first audible sample.
    sox -D "$raw" -r "$rate" -c 1 -b 16 "$cut" \
      silence 1 0.002 0.2% reverse silence 1 0.002 0.2% reverse
    len=$(soxi -s "$cut")
    awk -v w="$word" -v a="$samples" -v l="$len" -v r="$rate" \
      'BEGIN { printf "%s\t%.4f\t%.4f\n", w, a / r, (a + l) / r }' >>"$out_tsv"
    parts+=("$cut")
    samples=$((samples + len))
    if ((w + 1 < ${#words[@]})); then
      gap="${word_gaps[$(((n - 1) % ${#word_gaps[@]}))]}"
    else
      gap="$sentence_gap"
    fi
    if [[ "$gap" != 0 ]]; then
      silence "$tmp/gap$n.wav" "$gap"
      parts+=("$tmp/gap$n.wav")
      samples=$((samples + $(soxi -s "$tmp/gap$n.wav")))
    fi
  done
done
sox -D "${parts[@]}" -r "$rate" -c 1 -b 16 "$out_wav"
echo "wrote $out_wav ($(soxi -d "$out_wav")) and $out_tsv ($n words)"

out_de="$(dirname "$out_wav")/speech_de.wav"
espeak-ng -v de -s 150 -w "$tmp/de.wav" \
  "Guten Morgen. Heute ist das Wetter schön, und wir gehen zusammen in den Park."
sox -D "$tmp/de.wav" -r "$rate" -c 1 -b 16 "$out_de"
echo "wrote $out_de ($(soxi -d "$out_de"))"
