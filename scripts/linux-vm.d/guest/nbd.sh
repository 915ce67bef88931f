# Guest side of the nbd scenario: the kernel NBD client (nbd-client + nbd.ko) against our target.
# Attach, check the size, write the host's payload (/dev/vda, SF_MIB MiB) with O_DIRECT, sync, disconnect,
# reconnect, verify its sha256, then discard the second half (the host then checks `nbdinfo --map`) and verify
# that the first half is intact.
# Params: SF_HOST SF_NBD_PORT SF_NBD_EXPORT SF_SIZE SF_MIB SF_DATA_SHA SF_HALF_SHA.

nbd_attach() { timeout 60 nbd-client "$SF_HOST" "$SF_NBD_PORT" /dev/nbd0 -N "$SF_NBD_EXPORT" >/tmp/nbd-client.log 2>&1; }
nbd_detach() { nbd-client -d /dev/nbd0 >/dev/null 2>&1; }
debug_dump() { cat /tmp/nbd-client.log 2>/dev/null; dmesg | tail -20; }
nbd_fail() { result nbd FAIL "$*"; cat /tmp/nbd-client.log 2>/dev/null; dmesg | tail -20; nbd_detach; }

nbd_scenario() {
  half=$((SF_MIB / 2))
  t=$(up)
  nbd_attach || { nbd_fail "nbd-client attach failed"; return; }
  lap attach "$t"
  size=$(blockdev --getsize64 /dev/nbd0)
  [ "$size" = "$SF_SIZE" ] || { nbd_fail "size $size, want $SF_SIZE"; return; }
  result nbd-size PASS "$size bytes"

  t=$(up)
  write_payload /dev/nbd0 "$SF_MIB" || { nbd_fail "write failed"; return; }
  sync
  rate write "$t" "$SF_MIB"

  nbd_detach
  wait_for 10 sh -c '[ "$(cat /sys/block/nbd0/size)" = 0 ]' || { nbd_fail "disconnect did not complete"; return; }
  t=$(up)
  nbd_attach || { nbd_fail "reconnect failed"; return; }
  lap reattach "$t"
  echo 3 >/proc/sys/vm/drop_caches
  t=$(up)
  got=$(sum_dev /dev/nbd0 "$SF_MIB")
  rate read-verify "$t" "$SF_MIB"
  [ "$got" = "$SF_DATA_SHA" ] || { nbd_fail "sha256 after reconnect $got, want $SF_DATA_SHA"; return; }
  result nbd-verify PASS "$SF_MIB MiB, sha256 matches after reconnect"

  t=$(up)
  blkdiscard -o "$((half * 1048576))" -l "$((half * 1048576))" /dev/nbd0 || { nbd_fail "blkdiscard failed"; return; }
  lap discard "$t"
  echo 3 >/proc/sys/vm/drop_caches
  got=$(sum_dev /dev/nbd0 "$half")
  [ "$got" = "$SF_HALF_SHA" ] || { nbd_fail "first half changed by the discard: sha256 $got"; return; }
  info discarded-range "$((half * 1048576)) $((half * 1048576))"
  nbd_detach
  result nbd PASS "attach, $SF_MIB MiB write/reconnect/verify, discard"
}

nbd_scenario
