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
# wait_for SECONDS COMMAND...: poll (5/s) until COMMAND succeeds; 1 on timeout.
wait_for() {
  _n=$(($1 * 5)); shift
  while [ "$_n" -gt 0 ]; do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2; _n=$((_n - 1))
  done
  return 1
}
# sum_dev DEV MIB [SKIP_MIB]: sha256 of MIB MiB of DEV starting at SKIP_MIB, read with O_DIRECT (no page cache).
sum_dev() { dd if="$1" bs=1M count="$2" skip="${3:-0}" iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1; }
# sum_file FILE MIB [SKIP_MIB]: sha256 of a slice of a file.
sum_file() { dd if="$1" bs=1M count="$2" skip="${3:-0}" 2>/dev/null | sha256sum | cut -d' ' -f1; }
# write_payload DEV MIB: copy the host's payload disk (/dev/vda) to the start of DEV with O_DIRECT, then flush.
write_payload() { dd if=/dev/vda of="$1" bs=1M count="$2" iflag=direct oflag=direct conv=fsync 2>/dev/null; }
