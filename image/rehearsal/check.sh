#!/bin/bash
# The rehearsal's check, run inside the booted image by deskphone-rehearsal.service; never part
# of the image itself. What an admin sees on a fresh phone; the same phone given a config
# (registered with the registrar boot.py runs on the host); killed with -9; frozen until the
# watchdog restarts it; updated in the field. Prints "REHEARSAL key value" lines on the serial
# console for boot.py.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SECRET=pw101
say() { echo "REHEARSAL $*"; }
prop() { systemctl show -p "$1" --value deskphone.service; }
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
wait_for() {  # wait_for SECONDS COMMAND...: poll once a second until it succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
        sleep 1
    done
}
state() {
    python3 - "$@" <<'PY'
import json, sys, urllib.request
try:
    state = json.load(urllib.request.urlopen("http://127.0.0.1:8089/state", timeout=2))
except OSError:
    sys.exit(1)
if sys.argv[1:] == ["registered"]:
    sys.exit(0 if state["registration"] == "registered" else 1)
print(json.dumps(state))
PY
}
new_pid_registered() {  # the service runs a process other than $1 and it is registered
    local pid
    pid=$(prop MainPID)
    [ "$pid" != 0 ] && [ "$pid" != "$1" ] && state registered
}

# --- 1. A fresh card: no config.
say boot_to_service_active_s "$(awk -v us="$(prop ActiveEnterTimestampMonotonic)" 'BEGIN { printf "%.1f", us / 1e6 }')"
say fresh_state "$(prop ActiveState)/$(prop SubState) result=$(prop Result) restarts=$(prop NRestarts)"
say fresh_status "$(prop StatusText)"
say fresh_user "$(stat -c %U "/proc/$(prop MainPID)")"
journalctl -b -u deskphone.service -o cat --no-pager | tail -n 4 | sed 's/^/REHEARSAL fresh_journal /'
out=$(deskphone check-config 2>&1); rc=$?
say fresh_check_config "rc=$rc $(echo "$out" | head -n 2 | tr '\n' ' ')"
say imports "$(/opt/deskphone/venv/bin/python -c 'import lgpio, pyaudio, PIL, luma.oled, gpiozero, phonenumbers; print("lgpio pyaudio PIL luma.oled gpiozero phonenumbers")' 2>&1 | tail -n 1)"
say sound_cards "$(head -n 1 /proc/asound/cards)"
# Why the unit is as it is, shown on this systemd rather than assumed: a LoadCredential= line
# for a file that does not exist yet (a fresh card), and what ProcSubset=pid would hide.
systemd-run --quiet --wait -p LoadCredential=x:/etc/deskphone/no_such_file /bin/true 2>/dev/null
say missing_credential_file_start "rc=$?"
devices() {  # devices [PROPERTY...]: PortAudio's devices and the Pi check, as the service sees them
    systemd-run --quiet --wait --pipe -p User=deskphone -p SupplementaryGroups=audio \
        -p ProtectProc=invisible -p DevicePolicy=closed -p DeviceAllow="char-alsa rw" "$@" \
        /opt/deskphone/venv/bin/python -c 'import os, pyaudio
n = pyaudio.PyAudio().get_device_count()
seen = "readable" if os.access("/proc/cpuinfo", os.R_OK) else "hidden"
print(f"{n} sound devices, /proc/cpuinfo {seen}")' 2>/dev/null
}
say with_procsubset_pid "$(devices -p ProcSubset=pid)"
say without_procsubset "$(devices)"
say security "$(systemd-analyze security deskphone.service --no-pager 2>&1 | tail -n 1)"
say ssh_password_auth "$(sshd -T 2>/dev/null | grep -i '^passwordauthentication' || echo 'sshd -T failed')"
say admin_password "$(passwd -S admin | cut -d' ' -f2)"

# --- 2. The admin's steps from docs/admin-guide.md: a config, a root-only secret.
sip=$(sed -n 's/.*deskphone\.sip=\([^ ]*\).*/\1/p' /proc/cmdline)
old_pid=$(prop MainPID)
t0=$(now)
cat > /etc/deskphone/config.toml <<TOML
[sip]
server = "${sip%:*}"
port = ${sip#*:}
username = "101"
password_file = "/etc/deskphone/sip_password"

[phone]
name = "Rehearsal"

[control]
listen = "127.0.0.1:8089"
TOML
install -m 600 /dev/null /etc/deskphone/sip_password
echo "$SECRET" > /etc/deskphone/sip_password
out=$(deskphone check-config 2>&1); rc=$?
say configured_check_config "rc=$rc secret_shown=$(echo "$out" | grep -c "$SECRET")"
if wait_for 90 new_pid_registered "$old_pid"; then
    say config_to_registered_s "$(elapsed "$t0")"
else
    say config_to_registered_s "never (90 s): $(prop StatusText)"
    journalctl -b -u deskphone.service -o cat --no-pager | tail -n 15 | sed 's/^/REHEARSAL journal /'
fi
snapshot=$(state)
say configured_status "$(prop StatusText)"
say problems "$(echo "$snapshot" | python3 -c 'import json,sys; print(" | ".join(json.load(sys.stdin)["problems"]))')"
say secret_leaks "state=$(echo "$snapshot" | grep -c "$SECRET") journal=$(journalctl -b -o cat --no-pager | grep -c "$SECRET")"

# --- 3-5. Each done to the running phone; then how long until a new process is registered.
recovers() {  # recovers KEY SECONDS COMMAND...: COMMAND gets the phone's PID as its last word
    local key=$1 limit=$2 pid t0
    shift 2
    pid=$(prop MainPID)
    t0=$(now)
    if "$@" "$pid" && wait_for "$limit" new_pid_registered "$pid"; then
        say "$key" "$(elapsed "$t0")"
    else
        say "$key" "never ($limit s): $(prop ActiveState) $(prop StatusText)"
    fi
}
field_update() {  # as image/README.md gives it; the same wheel again, so forced
    /opt/deskphone/venv/bin/pip install --quiet --no-index --force-reinstall --no-deps \
        /opt/deskphone/deskphone-*.whl && systemctl restart deskphone
}
recovers kill9_to_registered_s 60 kill -9          # a crash: systemd starts it again
recovers frozen_to_registered_s 90 kill -STOP      # a stuck loop: no pings, the watchdog kills it
say watchdog_timeouts "$(journalctl -b -u deskphone.service -o cat --no-pager | grep -c -i 'watchdog timeout')"
recovers update_to_registered_s 60 field_update
say restarts "$(prop NRestarts)"
say finished
systemctl poweroff
