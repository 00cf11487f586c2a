#!/usr/bin/env bash
# What the stage installs, made from this repository: the firmware as a wheel, the unit, the
# example config and the docs, in stage-deskphone/01-deskphone/files/ (build.sh and rehearse.sh).
set -euo pipefail
cd "$(dirname "$0")"
files=stage-deskphone/01-deskphone/files
rm -rf "$files" && mkdir -p "$files"
"${PYTHON:-python3}" -m pip wheel --quiet --no-deps -w "$files" ..
cp ../systemd/deskphone.service "$files/"
cp ../config/example.toml "$files/config.example.toml"
cp -r ../docs "$files/docs"
