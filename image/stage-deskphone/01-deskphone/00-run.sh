#!/bin/bash -e
# Turn Raspberry Pi OS Lite into a desk phone: the firmware in a venv, its service user, the
# unit, the example config, I2C at 400 kHz. No default password: SSH is off unless the builder
# gives a public key (PUBKEY_SSH_FIRST_USER in the pi-gen config), and then key-only.

# The firmware: the wheel build.sh made from this repository, with its pinned dependencies.
install -d "${ROOTFS_DIR}/opt/deskphone"
install -m 644 files/deskphone-*.whl "${ROOTFS_DIR}/opt/deskphone/"
cp -r files/docs "${ROOTFS_DIR}/opt/deskphone/docs"
# Before the chroot: `systemctl enable` there needs the unit in place.
install -m 644 files/deskphone.service "${ROOTFS_DIR}/etc/systemd/system/deskphone.service"

on_chroot << 'CHROOT'
set -e
# --system-site-packages: apt's python3-lgpio serves Python 3.13 (no PyPI wheel there).
python3 -m venv --system-site-packages /opt/deskphone/venv
/opt/deskphone/venv/bin/pip install --no-cache-dir /opt/deskphone/deskphone-*.whl
# `deskphone check-config` for the admin, as the docs say it.
ln -sf /opt/deskphone/venv/bin/deskphone /usr/local/bin/deskphone
id deskphone >/dev/null 2>&1 || useradd --system --home-dir /var/lib/deskphone \
    --shell /usr/sbin/nologin --user-group deskphone
for group in gpio i2c spi audio; do
    getent group "$group" >/dev/null && usermod -a -G "$group" deskphone
done
install -d -m 750 -o root -g deskphone /etc/deskphone
systemctl enable deskphone.service
CHROOT

install -m 640 files/config.example.toml "${ROOTFS_DIR}/etc/deskphone/config.example.toml"

# I2C for the OLED at 400 kHz (a frame takes ~23 ms instead of ~92 ms), the sound card.
CONFIG_TXT="${ROOTFS_DIR}/boot/firmware/config.txt"
grep -q '^dtparam=i2c_arm=on' "${CONFIG_TXT}" || echo 'dtparam=i2c_arm=on' >> "${CONFIG_TXT}"
grep -q '^dtparam=i2c_arm_baudrate=' "${CONFIG_TXT}" || \
    echo 'dtparam=i2c_arm_baudrate=400000' >> "${CONFIG_TXT}"
grep -q '^i2c-dev' "${ROOTFS_DIR}/etc/modules" || echo 'i2c-dev' >> "${ROOTFS_DIR}/etc/modules"
# The Pi's own audio (a ringer on its jack); the handset's USB card needs nothing, an I2S codec
# HAT its overlay (build.sh --audio-overlay).
grep -q '^dtparam=audio=on' "${CONFIG_TXT}" || echo 'dtparam=audio=on' >> "${CONFIG_TXT}"
if [ -n "${DESKPHONE_AUDIO_OVERLAY:-}" ]; then
    grep -q "^dtoverlay=${DESKPHONE_AUDIO_OVERLAY}\$" "${CONFIG_TXT}" || \
        echo "dtoverlay=${DESKPHONE_AUDIO_OVERLAY}" >> "${CONFIG_TXT}"
fi

# No password logins at all; SSH only with the builder's key (pi-gen installs it).
sed -i 's/^#\?PasswordAuthentication .*/PasswordAuthentication no/' \
    "${ROOTFS_DIR}/etc/ssh/sshd_config"
