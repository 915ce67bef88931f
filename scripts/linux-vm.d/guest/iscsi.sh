# Guest side of the iscsi scenario: open-iscsi (iscsid + iscsi_tcp) against our target's iSCSI front end.
# SendTargets discovery must hand out an address usable from the guest; login with CHAP; the disk must show
# the size, vendor, unit serial and WWID the host read with libiscsi; write the payload (/dev/vda), verify it
# after dropping caches, discard the second half, verify the first half, log out.
# Params: SF_HOST SF_ISCSI_PORT SF_IQN SF_INITIATOR SF_CHAP_USER SF_CHAP_SECRET SF_SIZE SF_VENDOR SF_SERIAL
#         SF_NAA SF_MIB SF_DATA_SHA SF_HALF_SHA.
. /sf/iscsi-lib.sh

debug_dump() { iscsi_debug; }
iscsi_fail() { result iscsi FAIL "$*"; iscsi_debug; }

iscsi_scenario() {
  portal=$SF_HOST:$SF_ISCSI_PORT
  half=$((SF_MIB / 2))
  t=$(up)
  iscsi_start || { iscsi_fail "iscsid did not start"; return; }
  lap iscsid "$t"

  t=$(up)
  iscsiadm -m discovery -t sendtargets -p "$portal" >/tmp/disc 2>&1 || { cat /tmp/disc; iscsi_fail "discovery failed"; return; }
  lap discovery "$t"
  info discovered "$(tr '\n' ' ' </tmp/disc)"
  grep -qx "$portal,[0-9]* $SF_IQN" /tmp/disc || { iscsi_fail "discovery did not return $portal for $SF_IQN"; return; }
  result iscsi-discovery PASS "$(head -1 /tmp/disc)"

  t=$(up)
  iscsi_node_setup "$SF_IQN" "$portal" || { iscsi_fail "cannot set CHAP on the node record"; return; }
  dev=$(iscsi_login "$SF_IQN" "$portal") || { iscsi_fail "CHAP login failed"; return; }
  lap login "$t"
  result iscsi-login PASS "CHAP login, /dev/$dev"

  size=$(blockdev --getsize64 "/dev/$dev")
  vendor=$(sed 's/ *$//' "/sys/block/$dev/device/vendor")
  serial=$(tail -c +5 "/sys/block/$dev/device/vpd_pg80" | tr -d '\0')
  wwid=$(cat "/sys/block/$dev/device/wwid")
  info disk "/dev/$dev size=$size vendor=$vendor serial=$serial wwid=$wwid"
  [ "$size" = "$SF_SIZE" ] || { iscsi_fail "size $size, want $SF_SIZE"; return; }
  [ "$vendor" = "$SF_VENDOR" ] || { iscsi_fail "vendor '$vendor', want '$SF_VENDOR'"; return; }
  [ "$serial" = "$SF_SERIAL" ] || { iscsi_fail "serial '$serial', want '$SF_SERIAL'"; return; }
  wwid_ok "$wwid" || { iscsi_fail "wwid '$wwid', want naa.$SF_NAA... (32 hex digits)"; return; }
  result iscsi-identity PASS "size=$size vendor=$vendor serial=$serial wwid=$wwid"

  t=$(up)
  write_payload "/dev/$dev" "$SF_MIB" || { iscsi_fail "write failed"; return; }
  sync
  rate write "$t" "$SF_MIB"
  echo 3 >/proc/sys/vm/drop_caches
  t=$(up)
  got=$(sum_dev "/dev/$dev" "$SF_MIB")
  rate read-verify "$t" "$SF_MIB"
  [ "$got" = "$SF_DATA_SHA" ] || { iscsi_fail "sha256 $got, want $SF_DATA_SHA"; return; }
  result iscsi-verify PASS "$SF_MIB MiB, sha256 matches"

  [ "$(cat "/sys/block/$dev/queue/discard_max_bytes")" -gt 0 ] || { iscsi_fail "kernel sees no discard support"; return; }
  info provisioning "$(cat /sys/block/"$dev"/device/scsi_disk/*/provisioning_mode)"
  t=$(up)
  blkdiscard -o "$((half * 1048576))" -l "$((half * 1048576))" "/dev/$dev" || { iscsi_fail "blkdiscard failed"; return; }
  lap discard "$t"
  echo 3 >/proc/sys/vm/drop_caches
  got=$(sum_dev "/dev/$dev" "$half")
  [ "$got" = "$SF_HALF_SHA" ] || { iscsi_fail "first half changed by the discard: sha256 $got"; return; }
  info discarded-range "$((half * 1048576)) $((half * 1048576))"

  t=$(up)
  iscsiadm -m node -T "$SF_IQN" -p "$portal" --logout >/dev/null 2>&1 || { iscsi_fail "logout failed"; return; }
  wait_for 20 sh -c "[ ! -e /sys/block/$dev ]" || { iscsi_fail "/dev/$dev still present after logout"; return; }
  lap logout "$t"
  result iscsi PASS "discovery, CHAP login, identity, $SF_MIB MiB write/verify, discard, logout"
}

iscsi_scenario
