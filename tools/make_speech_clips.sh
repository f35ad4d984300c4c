#!/usr/bin/env bash
# Generates the short speech clips in assets/speech/ used by tests and examples.
#
# Speech is synthesized by espeak-ng (voice en-us) and converted with ffmpeg into every format the crate decodes.
# Output (about 2.1 s, mono unless stated; every file stays under 100 KB):
#   hello.wav             16-bit PCM, 22.05 kHz (espeak-ng's native rate)
#   hello.ogg             Ogg Vorbis, 22.05 kHz
#   hello.flac            FLAC, 22.05 kHz
#   hello.mp3             MP3, 22.05 kHz, 48 kbit/s
#   hello_stereo_44k.wav  16-bit PCM, 44.1 kHz, stereo, only the first 0.5 s ("Hello") so that it stays small;
#                         left = the speech, right = the same speech at half amplitude, so a mean mixdown
#                         gives 0.75 x the mono clip (tests check this)
#
# Usage: tools/make_speech_clips.sh [output_dir]   (default: assets/speech next to this script's parent)
# Needs: espeak-ng, ffmpeg (with libvorbis and libmp3lame).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../assets/speech}"
mkdir -p "$out"

for tool in espeak-ng ffmpeg; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found; install it (Debian: apt-get install $tool)" >&2; exit 1; }
done

sentence="Hello, I am a talking head."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# -v en-us: voice, -s 160: words per minute, -p 50: pitch (defaults written out for reproducibility).
espeak-ng -v en-us -s 160 -p 50 -w "$tmp/raw.wav" "$sentence"

# -bitexact / -map_metadata -1 keep the files free of encoder version strings and dates where possible.
ff=(ffmpeg -hide_banner -loglevel error -y -i "$tmp/raw.wav" -map_metadata -1)
"${ff[@]}" -ac 1 -ar 22050 -c:a pcm_s16le -bitexact "$out/hello.wav"
"${ff[@]}" -ac 1 -ar 22050 -c:a libvorbis -q:a 3 "$out/hello.ogg"
"${ff[@]}" -ac 1 -ar 22050 -c:a flac -compression_level 8 "$out/hello.flac"
"${ff[@]}" -ac 1 -ar 22050 -c:a libmp3lame -b:a 48k "$out/hello.mp3"
"${ff[@]}" -t 0.5 -filter_complex \
    "[0:a]aresample=44100:resampler=soxr,asplit[l][r];[r]volume=0.5[rh];[l][rh]join=inputs=2:channel_layout=stereo" \
    -c:a pcm_s16le -bitexact "$out/hello_stereo_44k.wav"

for f in hello.wav hello.ogg hello.flac hello.mp3 hello_stereo_44k.wav; do
    size=$(stat -c %s "$out/$f")
    dur=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$out/$f")
    printf '%-22s %7d bytes  %s s\n' "$f" "$size" "$dur"
done
