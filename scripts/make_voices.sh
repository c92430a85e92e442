#!/usr/bin/env bash
# Build tests/data/voices.wav (16 kHz mono) and tests/data/voices.json (the truth) from
# three clearly different espeak-ng voices, so diarization tests have a known answer.
# Needs: espeak-ng, sox. Output is deterministic for a given espeak-ng version.
set -euo pipefail

out_dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/tests/data}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"

# speaker label -> espeak-ng arguments (voice+variant, pitch 0-99, words per minute)
declare -A VOICE=(
  [alice]="-v en-us+f5 -p 80 -s 170"
  [bob]="-v en-us+croak -p 20 -s 175"
  [carol]="-v en-gb-x-rp+m7 -p 50 -s 160"
)

# Turns in speaking order: "speaker|sentence".
TURNS=(
  "alice|Good morning, everyone. Thank you for coming to the meeting today."
  "bob|Thanks. I brought the coffee and some fresh bread from the bakery."
  "carol|Great. Let us start with the weekend plans for the garden."
  "alice|I would like to plant tomatoes and a few rows of green beans."
  "bob|That sounds good, but we need to buy more soil first."
  "carol|I can drive to the store on Saturday morning after breakfast."
  "alice|Perfect. Please remember to bring the receipt back for me."
  "bob|Sure. Should we also fix the old fence near the gate?"
  "carol|Yes, the wood is broken, so we will need new nails and paint."
  "alice|Then it is settled. See you all on Saturday."
)

gap=0.5      # silence between turns, seconds
lead=0.5     # silence at the very start, seconds

sox -D -n -r 16000 -c 1 -b 16 "$work/gap.wav" trim 0 "$gap"
sox -D -n -r 16000 -c 1 -b 16 "$work/lead.wav" trim 0 "$lead"

parts=("$work/lead.wav")
json="["
t="$lead"
i=0
for turn in "${TURNS[@]}"; do
  speaker="${turn%%|*}"
  text="${turn#*|}"
  raw="$work/raw$i.wav"
  clip="$work/clip$i.wav"
  # shellcheck disable=SC2086  # VOICE holds several arguments on purpose
  espeak-ng ${VOICE[$speaker]} -w "$raw" "$text"
  # Trim espeak's own leading/trailing silence so the truth times are the speech itself.
  sox -D "$raw" -r 16000 -c 1 -b 16 "$clip" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3
  dur="$(soxi -D "$clip")"
  end="$(echo "$t + $dur" | bc -l)"
  [ "$i" -gt 0 ] && json+=","
  json+="$(printf '\n  {"speaker": "%s", "start": %.3f, "end": %.3f, "text": "%s"}' \
    "$speaker" "$t" "$end" "$text")"
  parts+=("$clip" "$work/gap.wav")
  t="$(echo "$end + $gap" | bc -l)"
  i=$((i + 1))
done
json+=$'\n]\n'

sox -D "${parts[@]}" -r 16000 -c 1 -b 16 "$out_dir/voices.wav"
printf '%s' "$json" > "$out_dir/voices.json"
echo "wrote $out_dir/voices.wav ($(soxi -D "$out_dir/voices.wav") s) and voices.json"
