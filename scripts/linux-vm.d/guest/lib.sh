# Helpers shared by the guest scenarios (sourced by /init; busybox sh). Timing uses /proc/uptime because busybox
# `date` has no sub-second format.

# Seconds since boot, two decimals.
up() { cut -d' ' -f1 /proc/uptime; }
# lap STEP START: print the time since START for STEP.
lap() { echo "TIME $1 $(awk -v a="$2" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }')"; }
# rate STEP START MIB: print MB/s (MiB per second) for MIB moved since START.
rate() { echo "RATE $1 $(awk -v a="$2" -v b="$(up)" -v m="$3" 'BEGIN { d = b - a; if (d <= 0) d = 0.01; printf "%.1f", m / d }')"; }
result() { echo "RESULT $*"; }
info() { echo "INFO $*"; }
# req ACTION: ask the host to do something (the host watches the console for these lines).
req() { echo "REQ $1"; }
# wait_for SECONDS COMMAND...: poll COMMAND (every 0.2 s, by the clock: each try may itself be slow under TCG)
# until it succeeds; 1 once SECONDS have passed.
wait_for() {
  _end=$(awk -v n="$1" '{ printf "%d", $1 + n }' /proc/uptime)
  shift
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(cut -d. -f1 /proc/uptime)" -ge "$_end" ] && return 1
    sleep 0.2
  done
}
# watchdog SECONDS: if the scenario is still running after SECONDS, report it, dump the state (debug_dump, if
# the scenario defines one) and power off, so a hang shows up as a FAIL with context rather than a QEMU timeout.
watchdog() {
  (
    sleep "$1"
    echo "RESULT watchdog FAIL scenario still running after $1 s"
    command -v debug_dump >/dev/null && debug_dump
    echo "DONE"
    sync
    poweroff -f
  ) &
}
# sum_dev DEV MIB [SKIP_MIB]: sha256 of MIB MiB of DEV starting at SKIP_MIB, read with O_DIRECT (no page cache).
sum_dev() { dd if="$1" bs=1M count="$2" skip="${3:-0}" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
# sum_file FILE MIB [SKIP_MIB]: sha256 of a slice of a file.
sum_file() { dd if="$1" bs=1M count="$2" skip="${3:-0}" 2>/dev/null | sha256sum | cut -d' ' -f1; }
# write_payload DEV MIB: copy the host's payload disk (/dev/vda) to the start of DEV with O_DIRECT, then flush.
write_payload() { dd if=/dev/vda of="$1" bs=1M count="$2" iflag=direct oflag=direct conv=fsync 2>/dev/null; }
