# Host side of the iscsi scenario: our target with one export (a fresh VDI, or memory: see export_args) on
# both front ends: iSCSI with CHAP, an initiator ACL and 10.0.2.2:PORT as the advertised portal; NBD for the
# host-side checks. The expected identity (vendor, unit serial, NAA WWID) is read on the host with libiscsi's
# iscsi-inq, independent of the guest kernel, which must report the same.

ISCSI_PREFIX=iqn.2026-11.org.sheepfold:
GUEST_IQN=iqn.2026-11.org.sheepfold.test:guest
CHAP_USER=guest
CHAP_SECRET=sheepfold-chap-secret

# iscsi_config FILE PORT PORTALS: the target config the iscsi and multipath scenarios use.
iscsi_config() {
  cat >"$1" <<CONF
[iscsi]
enabled = true
listen = "127.0.0.1:$2"
iqn-prefix = "$ISCSI_PREFIX"
acl = "$GUEST_IQN"
chap-user = "$CHAP_USER"
chap-secret = "$CHAP_SECRET"
portals = "$3"
CONF
}

# expected_identity PORT IQN: read INQUIRY data with libiscsi; sets EXP_VENDOR, EXP_SERIAL and EXP_NAA (hex of
# the NAA designator as far as iscsi-inq prints it: it prints the raw bytes as a C string, so up to the first
# zero byte; the guest's WWID must be "naa." + 32 hex digits starting with it).
expected_identity() {
  local url="iscsi://$CHAP_USER%$CHAP_SECRET@127.0.0.1:$1/$2/0"
  EXP_VENDOR=$(iscsi-inq -i "$GUEST_IQN" "$url" 2>/dev/null | sed -n 's/^Vendor:\(.*\)$/\1/p' | sed 's/ *$//')
  EXP_SERIAL=$(iscsi-inq -i "$GUEST_IQN" -e 1 -c 128 "$url" 2>/dev/null | sed -n 's/^Unit Serial Number:\[\(.*\)\]$/\1/p')
  EXP_NAA=$(iscsi-inq -i "$GUEST_IQN" -e 1 -c 131 "$url" 2>/dev/null | node -e '
    const b = require("fs").readFileSync(0);
    const m = Buffer.from("Designator Type:(3) NAA\nDesignator:[");
    const i = b.indexOf(m);
    if (i >= 0) { const s = i + m.length; const e = b.indexOf("]\n", s); console.log(b.subarray(s, e).toString("hex")); }')
  [ -n "$EXP_VENDOR" ] && [ -n "$EXP_SERIAL" ] && [ -n "$EXP_NAA" ] ||
    { say "cannot read the expected identity with iscsi-inq (vendor '$EXP_VENDOR' serial '$EXP_SERIAL' naa '$EXP_NAA')"; return 1; }
  say "INFO expected vendor=$EXP_VENDOR serial=$EXP_SERIAL naa=$EXP_NAA... (iscsi-inq on the host)"
}

scenario_iscsi() {
  local size=$((128 * 1048576)) iport nport iqn=${ISCSI_PREFIX}demo
  guest_payload "$MIB"
  iport=$(free_port)
  iscsi_config "$RUN/target.toml" "$iport" "10.0.2.2:$iport"
  export_args demo "$size" || return 1
  start_target target-iscsi --config "$RUN/target.toml" --nbd 127.0.0.1:0 "${EXPORT_ARGS[@]}" || return 1
  nport=${TARGET_NBD##*:}
  say "target pid $TARGET_PID iscsi $TARGET_ISCSI (portal advertised 10.0.2.2:$iport) nbd 127.0.0.1:$nport"
  expected_identity "$iport" "$iqn" || return 1
  guest_params <<PARAMS
SF_HOST=10.0.2.2
SF_ISCSI_PORT=$iport
SF_IQN=$iqn
SF_INITIATOR=$GUEST_IQN
SF_CHAP_USER=$CHAP_USER
SF_CHAP_SECRET=$CHAP_SECRET
SF_SIZE=$size
SF_VENDOR=$EXP_VENDOR
SF_SERIAL=$EXP_SERIAL
SF_NAA=$EXP_NAA
SF_MIB=$MIB
SF_ISCSID_DEBUG=${LINUX_VM_ISCSID_DEBUG:-1}
SF_ISCSID_TAIL=${LINUX_VM_ISCSID_TAIL:-60}
SF_DATA_SHA=$PAYLOAD_SHA
SF_HALF_SHA=$(payload_sha $((MIB / 2)))
PARAMS
  boot_guest iscsi
  guest_verdict iscsi-discovery iscsi-login iscsi-identity iscsi-verify iscsi || return 1
  check_discarded_export "$nport" demo
}
