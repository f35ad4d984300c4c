#!/usr/bin/env bash
# Generates the spoken lines of the examples (virtual_presenter, npc_dialogue) in assets/speech/lines/.
#
# Each line of assets/speech/lines/lines.tsv (clip, espeak-ng voice, words per minute, pitch, words) is synthesized
# by espeak-ng and converted by ffmpeg into <clip>.ogg: Ogg Vorbis, 16 kHz (the speech models' rate), mono, q 2.
# Every NPC has its own voice (a different espeak-ng voice and variant, pitch and rate). The whole folder stays
# well under 1.5 MB.
#
# Usage: tools/make_example_speech.sh [output_dir]   (default: assets/speech/lines next to this script's parent)
# Needs: espeak-ng, ffmpeg (with libvorbis).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lines="$here/../assets/speech/lines/lines.tsv"
out="${1:-$here/../assets/speech/lines}"
mkdir -p "$out"

for tool in espeak-ng ffmpeg ffprobe; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; install it (Debian: apt-get install espeak-ng ffmpeg)" >&2; exit 1; }
done
[ -f "$lines" ] || { echo "error: $lines is missing" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

total=0
while IFS=$'\t' read -r clip voice wpm pitch words; do
    case "$clip" in ''|'#'*) continue ;; esac
    if [ -z "$words" ]; then
        echo "error: line for '$clip' in $lines needs 5 tab-separated fields" >&2
        exit 1
    fi
    espeak-ng -v "$voice" -s "$wpm" -p "$pitch" -w "$tmp/raw.wav" -- "$words"
    # -map_metadata -1 keeps encoder dates and versions out of the files where possible.
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$tmp/raw.wav" -map_metadata -1 \
        -ac 1 -ar 16000 -c:a libvorbis -q:a 2 "$out/$clip.ogg"
    size=$(stat -c %s "$out/$clip.ogg" </dev/null)
    total=$((total + size))
    dur=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$out/$clip.ogg" </dev/null)
    printf '%-14s %-20s %6d bytes  %5.2f s  %s\n' "$clip.ogg" "$voice" "$size" "$dur" "$words"
done < "$lines"
echo "total: $total bytes"
