#!/usr/bin/env bash
# Synthesizes the shipped prompts from prompts/<lang>/prompts.txt with espeak-ng, then converts
# them with sox to 8 kHz mono 16-bit WAV with leading and trailing silence trimmed.
# Usage: prompts/make-prompts.sh [LANG...]   (default: en es)
# An operator may replace any WAV (or MP3) with a recording of the same name.
set -euo pipefail
cd "$(dirname "$0")"
declare -A voice=([en]=en-us [es]=es)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for lang in "${@:-en es}"; do
  for lang in $lang; do
    while IFS='|' read -r name text; do
      case "$name" in ''|'#'*) continue ;; esac
      espeak-ng -v "${voice[$lang]}" -s 150 -w "$work/raw.wav" "$text"
      sox "$work/raw.wav" -c 1 -b 16 "$lang/$name.wav" gain -n -3 \
        silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse rate 8000
    done < "$lang/prompts.txt"
    echo "$lang: $(ls "$lang"/*.wav | wc -l) prompts"
  done
done
