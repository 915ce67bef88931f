#!/usr/bin/env bash
# Guest image builder for scripts/linux-vm: a Debian kernel (generic flavour: it has scsi_dh_alua) and a base
# initramfs holding the kernel's NBD/iSCSI/dm-multipath initiators with their userspace (nbd-client, open-iscsi,
# multipath-tools, udevd) on static busybox. No chroot and nothing installed into the host's /etc: the .debs are
# fetched with `apt-get download` and unpacked with `dpkg -x`.
# Usage: build-image.sh CACHE_DIR [--force]  ->  CACHE_DIR/vmlinuz, CACHE_DIR/base.cpio.gz, CACHE_DIR/image.stamp
# The per-run /init, scenario and config files are NOT in the base image: the runner appends them as a second
# cpio archive, so editing them never needs a rebuild. The image is rebuilt when this file changes.
set -euo pipefail
CACHE=${1:?usage: build-image.sh CACHE_DIR [--force]}
FORCE=${2:-}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
STAMP_WANT="builder $(sha256sum "$0" | cut -c1-16)"
if [ "$FORCE" != --force ] && [ -f "$CACHE/vmlinuz" ] && [ -f "$CACHE/base.cpio.gz" ] &&
   [ "$(cat "$CACHE/image.stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then
  exit 0
fi

# Kernel modules the scenarios load, in any order (the insmod order is computed below). crc32c is a soft
# dependency of iscsi_tcp (not in modules.dep): without it login fails with "crc32c loading error".
MODULES="virtio_pci virtio_net virtio_blk nbd crc32c-intel crc32c_generic iscsi_tcp sd_mod scsi_dh_alua dm-multipath
  dm-round-robin dm-service-time dm-queue-length"
# Userspace packages unpacked into the image (their shared libraries come from the host, see install-peers).
TOOL_PKGS="nbd-client open-iscsi multipath-tools udev dmsetup"
BINARIES="sbin/nbd-client sbin/iscsid sbin/iscsiadm sbin/multipath sbin/multipathd sbin/dmsetup bin/udevadm
  lib/udev/scsi_id"
UDEV_RULES="50-udev-default 55-dm 56-dm-mpath 60-block 60-persistent-storage 60-persistent-storage-dm
  60-multipath 95-dm-notify"

for tool in depmod modprobe busybox dpkg apt-get ldd gzip; do
  command -v "$tool" >/dev/null || { echo "build-image: '$tool' missing (run scripts/setup/install-peers)" >&2; exit 1; }
done
# The applet list is read whole first: `busybox --list | grep -q` under pipefail fails at random when grep exits
# at its match and busybox dies of SIGPIPE.
applets=$([ -x /bin/busybox ] && /bin/busybox --list || true)
grep -qx cpio <<<"$applets" ||
  { echo "build-image: /bin/busybox lacks cpio (install busybox-static)" >&2; exit 1; }
! ldd /bin/busybox >/dev/null 2>&1 ||
  { echo "build-image: /bin/busybox is not static (install busybox-static)" >&2; exit 1; }

# The kernel package is resolved through the meta package: its ABI number changes with point releases.
resolve_kernel() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(resolve_kernel)
if [ -z "$KPKG" ]; then
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  KPKG=$(resolve_kernel)
fi
[ -n "$KPKG" ] || { echo "build-image: cannot resolve linux-image-amd64" >&2; exit 1; }

DEBS=$CACHE/debs
mkdir -p "$DEBS"
for pkg in "$KPKG" $TOOL_PKGS; do
  if ! ls "$DEBS/${pkg}"_*.deb >/dev/null 2>&1; then
    (cd "$DEBS" && apt-get download -q "$pkg" 2>&1 | { grep -v -i 'unsandboxed\|^W:' || true; })
    ls "$DEBS/${pkg}"_*.deb >/dev/null 2>&1 || { echo "build-image: download of $pkg failed" >&2; exit 1; }
  fi
done

WORK=$CACHE/build
rm -rf "$WORK"
mkdir -p "$WORK/kernel" "$WORK/pkgs" "$WORK/root"
trap 'rm -rf "$WORK"' EXIT
dpkg -x "$(ls "$DEBS/${KPKG}"_*.deb | head -1)" "$WORK/kernel"
for pkg in $TOOL_PKGS; do dpkg -x "$(ls "$DEBS/${pkg}"_*.deb | head -1)" "$WORK/pkgs"; done
KVER=$(ls "$WORK/kernel/lib/modules")
depmod -b "$WORK/kernel" "$KVER"   # the .deb ships no modules.dep

R=$WORK/root
MODDIR=lib/modules/$KVER
mkdir -p "$R/$MODDIR" "$R/etc" "$R/bin" "$R/sbin" "$R/lib/x86_64-linux-gnu" "$R/lib64"
# Insmod order: every module's dependency chain from modprobe, first occurrence wins. Names the kernel does
# not have (or has built in) produce no insmod line and are skipped.
for m in $MODULES; do
  modprobe -d "$WORK/kernel" -S "$KVER" --show-depends "$m" 2>/dev/null || true
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
  rel=${ko#"$WORK/kernel/$MODDIR/"}
  mkdir -p "$R/$MODDIR/$(dirname "$rel")"
  cp "$ko" "$R/$MODDIR/$rel"
  echo "$rel"
done >"$R/etc/sf-modules"
grep -q '/scsi_dh_alua\.ko' "$R/etc/sf-modules" || { echo "build-image: kernel $KVER has no scsi_dh_alua" >&2; exit 1; }

cp /bin/busybox "$R/bin/busybox"
for b in $BINARIES; do
  mkdir -p "$R/$(dirname "$b")"
  cp "$WORK/pkgs/$b" "$R/$b"
done
# systemd-udevd is udevadm under another name; multipath only takes devices udev has initialised.
mkdir -p "$R/lib/systemd" "$R/lib/udev/rules.d" "$R/lib/multipath" "$R/etc/udev"
ln -s /bin/udevadm "$R/lib/systemd/systemd-udevd"
for rule in $UDEV_RULES; do cp "$WORK/pkgs/lib/udev/rules.d/$rule.rules" "$R/lib/udev/rules.d/"; done
cp "$WORK/pkgs"/lib/multipath/*.so "$R/lib/multipath/"

# Shared libraries: whatever ldd reports for the binaries and multipath's checker/prioritizer plugins
# (packaged libs first, then the host's), plus libgcc_s, which glibc dlopen()s for pthread_cancel
# (multipathd exits at start without it) and ldd does not list.
LIBPATH=$WORK/pkgs/lib:$WORK/pkgs/lib/x86_64-linux-gnu:$WORK/pkgs/usr/lib/x86_64-linux-gnu
libs=$(for f in $BINARIES $(cd "$R" && ls lib/multipath/*.so); do LD_LIBRARY_PATH=$LIBPATH ldd "$R/$f"; done)
if grep -q 'not found' <<<"$libs"; then
  echo "build-image: missing host libraries (run scripts/setup/install-peers):" >&2
  grep 'not found' <<<"$libs" | sort -u >&2
  exit 1
fi
{ awk '/=> \// { print $3 } /^[ \t]+\/lib/ { print $1 }' <<<"$libs"; echo /lib/x86_64-linux-gnu/libgcc_s.so.1; } |
  sort -u | while read -r lib; do
    dst=${lib#"$WORK/pkgs"}
    mkdir -p "$R/$(dirname "$dst")"
    cp -L "$lib" "$R/$dst"
  done
[ -e "$R/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"

# open-iscsi's stock config, with iscsid started by path (there is no systemd in the guest).
mkdir -p "$R/etc/iscsi"
sed -e 's|^iscsid.startup = .*|iscsid.startup = /sbin/iscsid|' "$WORK/pkgs/etc/iscsi/iscsid.conf" >"$R/etc/iscsi/iscsid.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf '%s\n' root:x:0: tty:x:5: disk:x:6: kmem:x:15: dialout:x:20: cdrom:x:24: tape:x:26: audio:x:29: \
  video:x:44: input:x:105: kvm:x:106: render:x:107: sgx:x:108: >"$R/etc/group"

cp "$WORK/kernel/boot/vmlinuz-$KVER" "$CACHE/vmlinuz.new"
(cd "$R" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$CACHE/base.cpio.gz.new"
mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
mv "$CACHE/base.cpio.gz.new" "$CACHE/base.cpio.gz"
echo "$KVER" >"$CACHE/kernel.version"
echo "$STAMP_WANT" >"$CACHE/image.stamp"
echo "build-image: kernel $KVER ($KPKG), $(wc -l <"$R/etc/sf-modules") modules, base image $(du -h "$CACHE/base.cpio.gz" | cut -f1)"
