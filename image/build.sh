#!/usr/bin/env bash
# Build the desk phone SD-card image with pi-gen (Raspberry Pi OS Lite, 64-bit, Bookworm).
# Needs: Docker (pi-gen's build-docker.sh), git, python3 with `build`, about 20 GB of disk;
# about 40-60 minutes on a 4-core x86_64 machine (stage0-2 dominate).
#
#   image/build.sh [--ssh-key ~/.ssh/id_ed25519.pub] [--audio-overlay wm8960-soundcard]
set -euo pipefail
cd "$(dirname "$0")"
# pi-gen pinned to a tag, never a moving branch: the same input gives the same image.
PI_GEN_REPO=https://github.com/RPi-Distro/pi-gen.git
PI_GEN_REF=2024-11-19-raspios-bookworm-arm64
WORK=${WORK:-build}

ssh_key=""
audio_overlay=""
while [ $# -gt 0 ]; do
    case "$1" in
        --ssh-key) ssh_key=$(cat "$2"); shift 2 ;;
        # An I2S codec HAT's device-tree overlay, e.g. wm8960-soundcard (a USB card needs none).
        --audio-overlay) audio_overlay=$2; shift 2 ;;
        *) echo "usage: image/build.sh [--ssh-key FILE.pub] [--audio-overlay NAME]" >&2; exit 2 ;;
    esac
done
if ! [[ "$audio_overlay" =~ ^[a-z0-9-]*$ ]]; then
    echo "build.sh: --audio-overlay takes an overlay name like wm8960-soundcard" >&2
    exit 2
fi

rm -rf "$WORK" && mkdir -p "$WORK"
git clone --depth 1 --branch "$PI_GEN_REF" "$PI_GEN_REPO" "$WORK/pi-gen"

./files.sh
cp -r stage-deskphone "$WORK/pi-gen/"
cp config "$WORK/pi-gen/config"
# A random first-user password nobody is told: logins are by SSH key only.
echo "FIRST_USER_PASS=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >> "$WORK/pi-gen/config"
if [ -n "$ssh_key" ]; then
    {
        echo "ENABLE_SSH=1"
        echo "PUBKEY_SSH_FIRST_USER=\"$ssh_key\""
        echo "PUBKEY_ONLY_SSH=1"
    } >> "$WORK/pi-gen/config"
fi
# pi-gen sources its config: exported, the stage's scripts see it.
echo "export DESKPHONE_AUDIO_OVERLAY=$audio_overlay" >> "$WORK/pi-gen/config"
(cd "$WORK/pi-gen" && ./build-docker.sh)
ls -l "$WORK"/pi-gen/deploy/
