#!/usr/bin/env bash
# Synthesizes the shipped prompts from prompts/<lang>/prompts.txt with espeak-ng (the voice
# named in prompts/<lang>/language.toml), then converts them with sox to 8 kHz mono 16-bit WAV
# with leading and trailing silence trimmed.
# Usage: prompts/make-prompts.sh [LANG...]   (default: every directory with a language.toml)
# An operator may replace any WAV (or MP3) with a recording of the same name.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
languages=("$@")
if [ ${#languages[@]} -eq 0 ]; then
  for toml in */language.toml; do languages+=("${toml%%/*}"); done
fi
for lang in "${languages[@]}"; do
  voice=$(sed -n 's/^voice *= *"\(.*\)"/\1/p' "$lang/language.toml")
  while IFS='|' read -r name text; do
    case "$name" in ''|'#'*) continue ;; esac
    espeak-ng -v "$voice" -s 150 -w "$work/raw.wav" "$text"
    sox "$work/raw.wav" -c 1 -b 16 "$lang/$name.wav" gain -n -3 \
      silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse rate 8000
  done < "$lang/prompts.txt"
  echo "$lang ($voice): $(ls "$lang"/*.wav | wc -l) prompts"
done
