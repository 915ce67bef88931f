#!/bin/busybox sh
# /init of the scripts/linux-vm guest (busybox sh as PID 1). Brings up the minimum a kernel initiator needs
# (pseudo filesystems, modules, optionally udevd, a static address on the QEMU user network), then sources the
# scenario the runner named (/sf/$SF_SCENARIO.sh) and powers off. Parameters come from /etc/sf-params (shell
# assignments written by the runner). Lines the host parses, each at the start of a console line:
#   RESULT <check> PASS|FAIL|SKIP <detail>   TIME <step> <seconds>   RATE <step> <MB/s>
#   INFO <key> <value>   REQ <action> (the host acts, the guest observes the effect)   DONE
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /var /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock /dev/pts /etc/multipath
ln -sf /run /var/run
echo 1 >/proc/sys/kernel/printk   # keep kernel messages off the console lines the host parses

. /etc/sf-params
. /sf/lib.sh
T0=$(up)
echo "TIME kernel-boot $T0"

T_STEP=$(up)
while read -r ko; do
  insmod "/lib/modules/$(uname -r)/$ko" 2>/dev/null || info insmod-skipped "$ko"
done </etc/sf-modules
lap modules "$T_STEP"

if [ "${SF_UDEV:-0}" = 1 ]; then
  T_STEP=$(up)
  /lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/dev/null
  udevadm trigger --action=add --type=devices 2>/dev/null
  udevadm settle --timeout=30
  lap udevd "$T_STEP"
fi

# QEMU user networking: the host's 127.0.0.1 is 10.0.2.2, on-link. No default route on purpose.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
echo "TIME boot $(up)"

T_STEP=$(up)
watchdog "${SF_WATCHDOG:-240}"
. "/sf/$SF_SCENARIO.sh"
lap scenario "$T_STEP"
echo "DONE"
sync
poweroff -f
