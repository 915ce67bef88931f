# Host side of the multipath scenario: one disk exported by two target processes, A and B, each with its own
# iSCSI portal (advertised as 10.0.2.2:PORT); the guest (guest/multipath.sh) builds one dm-multipath map over
# both, and on its requests the host SIGKILLs A and later restarts it on the same port.
# The disk: LINUX_VM_MP_BACKEND=vdi (default; a fresh two-sheep cluster, one VDI opened by both targets in
# shared mode, each through its own gateway sheep) or file (both targets export the same backing file; for
# developing the harness). ALUA (targets/host-a.toml, host-b.toml: A is group 1, preferred; B group 2) is
# probed before the guest boots: TPGS=0 in A's INQUIRY data is a FAIL, unless LINUX_VM_MP_NO_ALUA=1 (then the
# guest's ALUA check reports SKIP and so does the scenario: exit 3, never a PASS).

MP_SIZE=$((128 * 1048576))
# More TOML lines for the [iscsi] section of target A's / B's config.
MP_ISCSI_EXTRA_A=${LINUX_VM_MP_ISCSI_A:-}
MP_ISCSI_EXTRA_B=${LINUX_VM_MP_ISCSI_B:-}

# mp_start_target NAME PORT: start target NAME (A or B) exporting the shared disk with its iSCSI portal on
# PORT; sets MP_PID_<NAME>.
mp_start_target() {
  local name=$1 port=$2 export extra
  iscsi_config "$RUN/target-$name.toml" "$port" "10.0.2.2:$port"
  # ALUA: A is port group 1 (preferred: active/optimized while alive), B group 2; each probes the other's portal
  if [ "$name" = A ]; then
    printf 'alua-group = 1\nalua-peers = "2@127.0.0.1:%s"\n' "$MP_PORT_B" >>"$RUN/target-$name.toml"
  else
    printf 'alua-group = 2\nalua-peers = "1@127.0.0.1:%s"\n' "$MP_PORT_A" >>"$RUN/target-$name.toml"
  fi
  printf 'alua-preferred-group = 1\nalua-probe-ms = 500\n' >>"$RUN/target-$name.toml"
  extra="MP_ISCSI_EXTRA_$name"
  [ -n "${!extra}" ] && printf '%s\n' "${!extra}" >>"$RUN/target-$name.toml"
  export="MP_EXPORT_$name[@]"
  start_target "target-$name" --config "$RUN/target-$name.toml" --nbd 127.0.0.1:0 "${!export}" || return 1
  printf -v "MP_PID_$name" %s "$TARGET_PID"
  say "target $name pid $TARGET_PID iscsi 127.0.0.1:$port"
}

# mp_on_req ACTION: what the guest asks the host to do (kill-a, restart-a).
mp_on_req() {
  case $1 in
    kill-a)
      kill -KILL "$MP_PID_A" 2>/dev/null
      wait "$MP_PID_A" 2>/dev/null
      say "target A (pid $MP_PID_A) SIGKILLed"
      ;;
    restart-a)
      if ! mp_start_target A "$MP_PORT_A"; then
        # the guest would only wait for the path in vain: stop it now
        MP_HOST_FAIL="restart of target A failed"
        kill -TERM "$QEMU_PID" 2>/dev/null
      fi
      ;;
  esac
}

scenario_multipath() {
  local backend=${LINUX_VM_MP_BACKEND:-vdi} tpgs alua=1 blocks=$((MIB / 8))
  guest_payload "$MIB"
  case $backend in
    vdi)
      # one gateway sheep per target host, both targets holding the VDI's shared (multipath) lock
      start_cluster demo "$MP_SIZE" 2 || return 1
      MP_EXPORT_A=(--sheep "127.0.0.1:${SHEEP_PORTS[0]}" --export demo=demo,shared)
      MP_EXPORT_B=(--sheep "127.0.0.1:${SHEEP_PORTS[1]}" --export demo=demo,shared)
      ;;
    file)
      truncate -s "$MP_SIZE" "$RUN/shared.img"
      MP_EXPORT_A=(--export "demo=file:$RUN/shared.img")
      MP_EXPORT_B=("${MP_EXPORT_A[@]}")
      ;;
    *) say "unknown LINUX_VM_MP_BACKEND '$backend'"; return 1 ;;
  esac
  MP_PORT_A=$(free_port)
  MP_PORT_B=$(free_port)
  mp_start_target A "$MP_PORT_A" || return 1
  tpgs=$(iscsi-inq -i "$GUEST_IQN" "iscsi://$CHAP_USER%$CHAP_SECRET@127.0.0.1:$MP_PORT_A/${ISCSI_PREFIX}demo/0" 2>/dev/null |
    sed -n 's/^TPGS:\([0-9]*\)$/\1/p')
  [ -n "$tpgs" ] || { say "cannot read A's INQUIRY data with iscsi-inq"; return 1; }
  if [ "$tpgs" = 0 ]; then
    [ "${LINUX_VM_MP_NO_ALUA:-0}" = 1 ] || { say "target A reports TPGS=0 (no ALUA) although alua-group is set"; return 1; }
    alua=0
  fi
  mp_start_target B "$MP_PORT_B" || return 1
  guest_file "$HERE/multipath.conf" /etc/multipath.conf
  guest_params <<PARAMS
SF_UDEV=1
SF_HOST=10.0.2.2
SF_PORT_A=$MP_PORT_A
SF_PORT_B=$MP_PORT_B
SF_IQN=${ISCSI_PREFIX}demo
SF_INITIATOR=$GUEST_IQN
SF_CHAP_USER=$CHAP_USER
SF_CHAP_SECRET=$CHAP_SECRET
SF_SIZE=$MP_SIZE
SF_BLOCKS=$blocks
SF_ALUA=$alua
SF_ISCSID_DEBUG=${LINUX_VM_ISCSID_DEBUG:-1}
SF_ISCSID_TAIL=${LINUX_VM_ISCSID_TAIL:-60}
PARAMS
  MP_HOST_FAIL=
  boot_guest multipath mp_on_req
  [ -z "$MP_HOST_FAIL" ] || { say "$MP_HOST_FAIL"; return 1; }
  guest_verdict multipath-map multipath-failover multipath-reinstate multipath || return 1
  if [ "$alua" = 0 ]; then
    SKIP_REASON="target has no ALUA (TPGS=0): map, failover and reinstate passed on the '$backend' backend, ALUA grouping not checked"
  fi
  return 0
}
