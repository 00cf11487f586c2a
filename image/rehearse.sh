#!/usr/bin/env bash
# Rehearse the image without the Raspberry Pi archive: build our pi-gen stage on a stand-in for
# pi-gen's stages 0-2 (Debian Bookworm arm64 from Debian's mirror, with the groups, first user
# and /boot/firmware/config.txt those stages make), run it the way pi-gen runs a stage (prerun.sh,
# NN-packages, NN-run.sh with on_chroot), then boot the result under qemu-system-aarch64 and let
# rehearsal/check.sh report what an admin would see (image/README.md, "Rehearsal").
#
# Needs root and: debootstrap qemu-user-static binfmt-support qemu-system-arm e2fsprogs,
# python3 with pip and pytest ($PYTHON; ./dev rehearse gives it the venv's), kamailio (the
# registrar the booted phone registers with), about 4 GB of disk.
#
#   image/rehearse.sh            # base (cached in $WORK/base.tar), stage, boot, check
#   image/rehearse.sh --fresh    # rebuild the base too
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
WORK=${WORK:-$HERE/build/rehearsal}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# What Raspberry Pi OS Lite has that the stage relies on, and a kernel to boot the stand-in.
BASE_PACKAGES=systemd,systemd-sysv,dbus,udev,kmod,initramfs-tools,openssh-server,sudo,python3,\
ca-certificates,iproute2
# Packages only the Raspberry Pi archive has: the stand-in goes without them (on Bookworm's
# Python 3.11 the firmware's pip dependencies bring lgpio instead).
RPI_ONLY="python3-lgpio"

mkdir -p "$WORK"
export WORK  # copy_previous, in prerun.sh, takes the base from it
log() { printf '%s rehearse: %s\n' "$(date +%T)" "$*"; }
timed() {  # timed NAME COMMAND...: run it, write "NAME seconds" to $WORK/times
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "$name $((SECONDS - start))" >> "$WORK/times"
}

chroot_mounts() {  # what pi-gen's on_chroot mounts
    local root=$1
    mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
    mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
    mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
    mountpoint -q "$root/sys" || mount --bind /sys "$root/sys"
    mountpoint -q "$root/run" || mount -t tmpfs tmpfs "$root/run"
    mountpoint -q "$root/tmp" || mount -t tmpfs tmpfs "$root/tmp"
}
chroot_unmount() {
    local root=$1 dir
    for dir in tmp run sys dev/pts dev proc; do
        if mountpoint -q "$root/$dir"; then umount -l "$root/$dir"; fi
    done
}
on_chroot() {  # pi-gen's on_chroot: a bash -e in the root file system, script on stdin
    chroot_mounts "$ROOTFS_DIR"
    chroot "$ROOTFS_DIR" /bin/bash -e
}
copy_previous() {  # pi-gen's copy_previous: start from the previous stage's root
    mkdir -p "$ROOTFS_DIR"
    tar -C "$ROOTFS_DIR" -xf "$WORK/base.tar"
}
export -f on_chroot chroot_mounts copy_previous

base() {
    local root=$WORK/base
    chroot_unmount "$root" 2>/dev/null || true
    # A finished debootstrap (it removes its /debootstrap at the end) is kept: only the rest redone.
    if [ ! -d "$root/usr" ] || [ -d "$root/debootstrap" ]; then
        rm -rf "$root"
        debootstrap --arch=arm64 --variant=minbase --include="$BASE_PACKAGES" bookworm \
            "$root" "$MIRROR"
    fi
    # The build machine's own certificate authorities, for pip behind an inspecting proxy.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    fi
    ROOTFS_DIR=$root on_chroot <<'CHROOT'
update-ca-certificates >/dev/null
apt-get update -q
# A kernel for qemu's virt machine, with an initrd of only what it needs to mount the disk:
# the default (every module) takes 10 minutes per initrd under qemu-user.
printf 'MODULES=list\n' > /etc/initramfs-tools/conf.d/rehearsal
printf '%s\n' virtio_pci virtio_blk ext4 >> /etc/initramfs-tools/modules
apt-get install -q -y linux-image-arm64
# What pi-gen's stages 0-2 make and the stage relies on: the device groups, the first user
# (pi-gen gives it the password from the config; build.sh makes that random), the boot config.
for group in gpio i2c spi; do groupadd -f -r "$group"; done
useradd -m -s /bin/bash -G sudo,audio,gpio,i2c,spi admin
usermod -p "$(head -c 24 /dev/urandom | base64)" admin
install -d /boot/firmware
printf '%s\n' '# Raspberry Pi OS config.txt (stand-in)' 'dtparam=audio=on' '[all]' \
    > /boot/firmware/config.txt
echo deskphone > /etc/hostname
printf '/dev/vda / ext4 defaults 0 1\n' > /etc/fstab
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' > /etc/systemd/network/20-wired.network
systemctl enable systemd-networkd
CHROOT
    chroot_unmount "$root"
    tar -C "$root" -cf "$WORK/base.tar" .
    rm -rf "$root"
}

stage() {
    # pi-gen's run_stage for our stage: prerun.sh, then in each sub-stage NN-packages-nr,
    # NN-packages and NN-run.sh, with ROOTFS_DIR and on_chroot as pi-gen gives them.
    local stage_dir=$WORK/stage-deskphone sub i packages want
    export ROOTFS_DIR=$WORK/rootfs
    # As build.sh --audio-overlay passes it, for an I2S codec HAT.
    export DESKPHONE_AUDIO_OVERLAY=wm8960-soundcard
    chroot_unmount "$ROOTFS_DIR" 2>/dev/null || true
    rm -rf "$ROOTFS_DIR" "$stage_dir"
    cp -r "$HERE/stage-deskphone" "$stage_dir"
    (cd "$stage_dir" && ./prerun.sh)
    for sub in "$stage_dir"/*/; do
        pushd "$sub" >/dev/null
        for i in $(seq -w 0 99); do
            for list in "$i-packages-nr" "$i-packages"; do
                [ -f "$list" ] || continue
                packages=$(sed -e 's/#.*//' "$list" | tr -s ' \n' ' ')
                for skip in $RPI_ONLY; do packages=${packages//$skip/}; done
                options=""
                [ "$list" = "$i-packages-nr" ] && options="--no-install-recommends"
                echo "apt-get -o Acquire::Retries=3 install $options -y $packages" | on_chroot
            done
            if [ -x "$i-run.sh" ]; then
                "./$i-run.sh"
            fi
        done
        popd >/dev/null
    done
    chroot_unmount "$ROOTFS_DIR"
    # What the boot partition must carry (qemu boots no Pi firmware, so it is read here): each
    # line once, after Raspberry Pi OS's own.
    for want in dtparam=i2c_arm=on dtparam=i2c_arm_baudrate=400000 dtparam=audio=on \
                "dtoverlay=$DESKPHONE_AUDIO_OVERLAY"; do
        if [ "$(grep -c -x "$want" "$ROOTFS_DIR/boot/firmware/config.txt")" != 1 ]; then
            echo "rehearse: config.txt should have '$want' once:"
            cat "$ROOTFS_DIR/boot/firmware/config.txt"
            exit 1
        fi
    done
    grep -q -x i2c-dev "$ROOTFS_DIR/etc/modules"
}

disk() {
    # The rehearsal's own check service (not part of the image), then an ext4 disk from the
    # tree (mke2fs -d: no loop device, no mount) and the kernel and initrd beside it.
    install -m 755 "$HERE/rehearsal/check.sh" "$ROOTFS_DIR/usr/local/sbin/deskphone-rehearsal"
    install -m 644 "$HERE/rehearsal/deskphone-rehearsal.service" \
        "$ROOTFS_DIR/etc/systemd/system/"
    ln -sf /etc/systemd/system/deskphone-rehearsal.service \
        "$ROOTFS_DIR/etc/systemd/system/multi-user.target.wants/deskphone-rehearsal.service"
    # The serial console is the report's: a login prompt there would hang up its writes.
    ln -sf /dev/null "$ROOTFS_DIR/etc/systemd/system/serial-getty@ttyAMA0.service"
    cp "$ROOTFS_DIR"/boot/vmlinuz-* "$WORK/vmlinuz"
    cp "$ROOTFS_DIR"/boot/initrd.img-* "$WORK/initrd.img"
    local size_mb
    size_mb=$(( $(du -sm "$ROOTFS_DIR" | cut -f1) * 3 / 2 + 512 ))
    rm -f "$WORK/disk.img"
    mke2fs -q -t ext4 -L rootfs -d "$ROOTFS_DIR" "$WORK/disk.img" "${size_mb}M"
}

preflight() {
    local cmd
    for cmd in debootstrap qemu-system-aarch64 mke2fs kamailio python3; do
        command -v "$cmd" >/dev/null || { echo "rehearse: needs $cmd (./dev rehearse)"; exit 2; }
    done
    [ "$(id -u)" -eq 0 ] || { echo "rehearse: needs root (debootstrap, chroot, mounts)"; exit 2; }
    # arm64 programs in the chroot run through qemu-user, registered with binfmt_misc. A machine
    # that cannot do that cannot rehearse at all: exit 3, which .ci/run reports as not run.
    mountpoint -q /proc/sys/fs/binfmt_misc ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 || true
    if ! chroot_probe; then
        echo "rehearse: this machine cannot run arm64 programs (binfmt_misc with qemu-aarch64)"
        exit 3
    fi
}
chroot_probe() {  # an arm64 program runs here
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] &&
        grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64
}

preflight
trap 'chroot_unmount "$WORK/rootfs" 2>/dev/null || true' EXIT
rm -f "$WORK/times"
if [ "${1:-}" = "--fresh" ] || [ ! -f "$WORK/base.tar" ]; then
    log "base: Debian Bookworm arm64 standing in for Raspberry Pi OS Lite"
    timed base base
fi
log "files: the wheel, the unit, the example config, the docs"
timed files ./files.sh
log "stage: stage-deskphone as pi-gen runs it"
timed stage stage
log "disk"
timed disk disk
log "boot: qemu-system-aarch64, then rehearsal/check.sh inside"
timed boot "${PYTHON:-python3}" "$HERE/rehearsal/boot.py" --work "$WORK"
log "times (s):"
cat "$WORK/times"
