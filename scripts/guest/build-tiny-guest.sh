#!/usr/bin/env bash
# build-tiny-guest.sh OUTDIR
#
# Builds the tiny bootable guest that Stratus's qemu driver boots (and its tests use):
#   OUTDIR/vmlinuz     Debian distribution kernel (default: the linux-image-cloud-amd64 flavour)
#   OUTDIR/initrd.img  busybox initramfs whose /init writes a per-disk counter to sector 0 of EVERY
#                      virtio disk (/dev/vd[a-z], rescanned each tick, so disks hot-plugged over
#                      PCIe are picked up) and logs every attempt on the serial console
#   OUTDIR/guest.env   KERNEL_PACKAGE=..., KERNEL_VERSION=..., BUSYBOX_VERSION=..., INITRD_SHA256=...
#
# Adapted from the project's shared tooling (shared/guest/build-tiny-guest.sh).
# Idempotent: installs missing Debian packages (apt), downloads the kernel .deb once
# (OUTDIR/.work; never installed on the host), and rebuilds only when this script, the kernel
# or busybox changed. Knobs: GUEST_KERNEL_META (default linux-image-cloud-amd64),
# GUEST_NO_INSTALL=1, GUEST_FORCE=1 (rebuild even if up to date).
#
# Guest console protocol (serial, one line each, lines end in \r\n; <dev> is the kernel
# name, e.g. vda):
#   TINY-GUEST READY tag=<tag> uptime=<s> disk=<yes|no>  once, after modules are loaded
#   TINY-GUEST START <dev> counter=<n>      <dev> appeared; counter found in its sector 0 (0 if none)
#   wrote <dev> <n>                         sector 0 of <dev> now holds "counter=<n> tag=<tag> dev=<dev>"
#   write failed <dev> <n>                  that write (O_DIRECT + fsync) returned an error
#   TINY-GUEST GONE <dev>                   <dev> was unplugged (its counter is forgotten; a disk that
#                                           appears later under the same name starts from its own sector)
# With no disk the guest keeps running and keeps rescanning. Every <interval> seconds it writes
# once to each known disk, in name order.
# Kernel command line knobs read by /init: guest.tag=<word> guest.interval=<seconds> guest.kmsg=1
# (guest.kmsg=1 keeps kernel messages on the console; by default /init sets `dmesg -n 1` after
# READY so kernel I/O-error and hot-plug lines don't interleave with the protocol lines.)
#
# PCIe hot-plug: the guest needs pciehp (CONFIG_HOTPLUG_PCI_PCIE) and/or acpiphp
# (CONFIG_HOTPLUG_PCI_ACPI; qemu 7.2's q35 announces root-port hot-plug through ACPI by default).
# Both are built into Debian's cloud kernel; the build checks the kernel's config and fails if
# neither is available.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUTDIR=$1
META=${GUEST_KERNEL_META:-linux-image-cloud-amd64}
T0=$(date +%s.%N)
step_t=$T0
step() { # step NAME: print how long the previous step took
    local now; now=$(date +%s.%N)
    awk -v n="$1" -v a="$step_t" -v b="$now" -v t="$T0" \
        'BEGIN { printf "[build-tiny-guest] %-28s %6.2f s (total %6.2f s)\n", n, b - a, b - t }' >&2
    step_t=$now
}
log() { echo "[build-tiny-guest] $*" >&2; }

# ---------------------------------------------------------------- packages
need_pkgs=(busybox-static cpio qemu-system-x86 qemu-utils qemu-block-extra)
missing=()
for p in "${need_pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${GUEST_NO_INSTALL:-0}" = 1 ]; then
        echo "missing packages: ${missing[*]} (GUEST_NO_INSTALL=1)" >&2
        exit 1
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # All qemu packages must come from one release: some machine images ship a newer
    # qemu-utils (backports) that breaks Debian 12's qemu-system-x86, so pin every
    # qemu package to qemu-system-x86's candidate version (downgrading if needed).
    install_list() {
        local v; v=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/{print $2}')
        local out=(busybox-static cpio)
        for q in qemu-system-x86 qemu-utils qemu-block-extra qemu-system-common; do out+=("$q${v:+=$v}"); done
        printf '%s\n' "${out[@]}"
    }
    mapfile -t pkgs < <(install_list)
    apt-get install -y --no-install-recommends --allow-downgrades "${pkgs[@]}" >/dev/null 2>&1 || {
        apt-get update >/dev/null
        mapfile -t pkgs < <(install_list)
        apt-get install -y --no-install-recommends --allow-downgrades "${pkgs[@]}" >/dev/null
    }
fi
step "packages"

mkdir -p "$OUTDIR/.work"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$OUTDIR/.work

# ---------------------------------------------------------------- kernel package
kpkg=$(apt-cache depends "$META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$kpkg" ]; then
    apt-get update >/dev/null
    kpkg=$(apt-cache depends "$META" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "cannot resolve kernel package for $META" >&2; exit 1; }
kdeb=$(ls "$WORK"/"${kpkg}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$kdeb" ]; then
    log "downloading $kpkg"
    (cd "$WORK" && apt-get download "$kpkg" >/dev/null 2>&1) || {
        apt-get update >/dev/null
        (cd "$WORK" && apt-get download "$kpkg" >/dev/null)
    }
    kdeb=$(ls "$WORK"/"${kpkg}"_*.deb | head -n1)
fi
step "kernel .deb ($kpkg)"

bb_ver=$(dpkg-query -W -f='${Version}' busybox-static)
stamp=$( { sha256sum "$0" | cut -d' ' -f1; basename "$kdeb"; echo "$bb_ver"; } | sha256sum | cut -d' ' -f1)
if [ "${GUEST_FORCE:-0}" != 1 ] && [ -f "$OUTDIR/vmlinuz" ] && [ -f "$OUTDIR/initrd.img" ] \
   && [ "$(cat "$OUTDIR/.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "up to date ($(basename "$kdeb"), busybox $bb_ver)"
    step "done"
    exit 0
fi

KX=$WORK/kernel
rm -rf "$KX"
mkdir -p "$KX"
dpkg-deb -x "$kdeb" "$KX"
kver=$(ls "$KX/lib/modules" | head -n1)
step "extract kernel $kver"

# ---------------------------------------------------------------- initramfs tree
R=$WORK/root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules/"$kver",etc/acpi/PWRF}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

# Kernel modules needed for a virtio disk (+ ACPI power button so that QMP
# system_powerdown works). Resolve dependencies from each .ko's modinfo
# "depends=" (no kmod/depmod needed), load order = dependencies first.
declare -A modpath=() loaded=()
while IFS= read -r f; do
    n=$(basename "$f" .ko); modpath[${n//-/_}]=$f
done < <(find "$KX/lib/modules/$kver" -name '*.ko')
order=()
add_mod() {
    local m=${1//-/_} deps d
    [ -n "${loaded[$m]:-}" ] && return 0
    loaded[$m]=1
    if [ -z "${modpath[$m]:-}" ]; then
        # built into the kernel?
        if grep -q "/$m.ko\$" "$KX/lib/modules/$kver/modules.builtin" 2>/dev/null; then return 0; fi
        log "warning: module $m not found (assuming built in)"; return 0
    fi
    deps=$(tr '\0' '\n' < "${modpath[$m]}" | grep -a -m1 '^depends=' | cut -d= -f2 || true)
    for d in ${deps//,/ }; do add_mod "$d"; done
    order+=("$m")
}
# PCIe hot-plug (disks attached later with device_add on a pcie-root-port): pciehp or acpiphp,
# built in (=y) or as a module (=m, then loaded like the virtio ones). Fail loudly without either.
kconfig=$KX/boot/config-$kver
[ -f "$kconfig" ] || { echo "kernel config $kconfig missing from the .deb" >&2; exit 1; }
hotplug_mods=()
hotplug_ok=no
for opt in CONFIG_HOTPLUG_PCI_PCIE:pciehp CONFIG_HOTPLUG_PCI_ACPI:acpiphp; do
    case "$(sed -n "s/^${opt%%:*}=//p" "$kconfig")" in
        y) hotplug_ok=yes ;;
        m) hotplug_ok=yes; hotplug_mods+=("${opt#*:}") ;;
    esac
done
[ "$hotplug_ok" = yes ] || { echo "kernel $kver has neither CONFIG_HOTPLUG_PCI_PCIE nor CONFIG_HOTPLUG_PCI_ACPI: no disk hot-plug" >&2; exit 1; }
log "PCIe hot-plug: $(grep -E '^CONFIG_HOTPLUG_PCI_(PCIE|ACPI)=' "$kconfig" | paste -sd' ')"
for m in virtio_pci virtio_blk button evdev ${hotplug_mods[@]+"${hotplug_mods[@]}"}; do add_mod "$m"; done
: > "$R/etc/modules.order"
for m in "${order[@]}"; do
    cp "${modpath[$m]}" "$R/lib/modules/$kver/$m.ko"
    echo "$m" >> "$R/etc/modules.order"
done
log "modules: ${order[*]}"

# busybox acpid: power button (ACPI event PWRF) -> /etc/acpi/PWRF/00000080
cat > "$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "TINY-GUEST POWERDOWN" > /dev/console
sync
poweroff -f
EOF
chmod 755 "$R/etc/acpi/PWRF/00000080"
cp -r "$R/etc/acpi/PWRF" "$R/etc/acpi/PWRB"
printf 'PWRF PWRF/00000080\nPWRB PWRB/00000080\n' > "$R/etc/acpid.conf"

cat > "$R/init" <<'EOF'
#!/bin/sh
# tiny-guest /init (PID 1, never exits): one counter per virtio disk, written every tick
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

tag=guest; interval=1; kmsg=0
for a in $(cat /proc/cmdline); do
    case "$a" in
        guest.tag=*) tag=${a#guest.tag=} ;;
        guest.interval=*) interval=${a#guest.interval=} ;;
        guest.kmsg=*) kmsg=${a#guest.kmsg=} ;;
    esac
done
kver=$(uname -r)
for m in $(cat /etc/modules.order); do
    insmod /lib/modules/$kver/$m.ko 2>/dev/null
done
# power button -> poweroff (QMP system_powerdown)
[ -e /dev/input ] && acpid -c /etc/acpi -a /etc/acpid.conf 2>/dev/null

# Disks present at boot show up while virtio_blk loads; allow them 2 s. Later ones are
# picked up by the rescan in the loop below (devtmpfs creates their nodes).
i=0
while ! ls /dev/vd[a-z] >/dev/null 2>&1 && [ $i -lt 20 ]; do usleep 100000; i=$((i+1)); done
disk=no; ls /dev/vd[a-z] >/dev/null 2>&1 && disk=yes
echo "TINY-GUEST READY tag=$tag uptime=$(cut -d' ' -f1 /proc/uptime) disk=$disk"
[ "$kmsg" = 1 ] || dmesg -n 1

# known: the disks being written, by kernel name. For each name v: n_v = its counter and
# id_v = its sysfs path (which names the PCI slot and the virtio index), so a disk that is
# unplugged and replaced by another one under the same name is seen as new.
known=
while :; do
    keep=
    for v in $known; do
        eval "id=\$id_$v"
        if [ -b "/dev/$v" ] && [ "$(readlink "/sys/block/$v")" = "$id" ]; then
            keep="$keep $v"
        else
            echo "TINY-GUEST GONE $v"
        fi
    done
    known=$keep
    for d in /dev/vd[a-z]; do
        [ -b "$d" ] || continue
        v=${d#/dev/}
        case " $known " in *" $v "*) continue ;; esac
        # continue from the counter on the disk; if the read fails, try again next tick
        # (never restart a disk's counter from 0 because of a transient error)
        dd if="$d" of=/tmp/sector bs=512 count=1 iflag=direct 2>/dev/null || continue
        n=$(tr -d '\000' </tmp/sector | sed -n '1s/^counter=\([0-9][0-9]*\).*/\1/p')
        n=${n:-0}
        eval "n_$v=$n; id_$v=\$(readlink /sys/block/$v)"
        known="$known $v"
        echo "TINY-GUEST START $v counter=$n"
    done
    for v in $known; do
        eval "n=\$((n_$v + 1)); n_$v=\$n"
        # one 512-byte sector: "counter=N tag=T dev=D\n" padded with NULs (conv=sync), O_DIRECT + fsync
        if printf 'counter=%d tag=%s dev=%s\n' "$n" "$tag" "$v" \
            | dd of="/dev/$v" bs=512 count=1 conv=sync,notrunc,fsync oflag=direct 2>/dev/null; then
            echo "wrote $v $n"
        else
            echo "write failed $v $n"
        fi
    done
    sleep "$interval"
done
EOF
chmod 755 "$R/init"
step "initramfs tree"

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) \
    | gzip -9 > "$OUTDIR/initrd.img.tmp"
mv "$OUTDIR/initrd.img.tmp" "$OUTDIR/initrd.img"
cp "$KX/boot/vmlinuz-$kver" "$OUTDIR/vmlinuz.tmp"
mv "$OUTDIR/vmlinuz.tmp" "$OUTDIR/vmlinuz"
cat > "$OUTDIR/guest.env" <<EOF
KERNEL_PACKAGE=$(basename "$kdeb")
KERNEL_VERSION=$kver
BUSYBOX_VERSION=$bb_ver
INITRD_SHA256=$(sha256sum "$OUTDIR/initrd.img" | cut -d' ' -f1)
EOF
echo "$stamp" > "$OUTDIR/.stamp"
rm -rf "$KX" "$R"
step "cpio+gzip"
log "built $OUTDIR/vmlinuz ($(stat -c %s "$OUTDIR/vmlinuz") B) and $OUTDIR/initrd.img ($(stat -c %s "$OUTDIR/initrd.img") B), kernel $kver"
