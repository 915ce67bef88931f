# Guest side of the multipath scenario: open-iscsi sessions to target hosts A and B (one shared disk) under
# dm-multipath (multipath + multipathd, udevd running). Checks one map with two paths, ALUA priorities (A's
# group active), then runs a verifying write/read loop while the host SIGKILLs A (REQ kill-a): I/O must go on
# through B with no verify error; then A is restarted (REQ restart-a) and its path must come back and be used.
# Params: SF_HOST SF_PORT_A SF_PORT_B SF_IQN SF_INITIATOR SF_CHAP_USER SF_CHAP_SECRET SF_SIZE SF_BLOCKS
#         SF_ALUA (1: require ALUA priorities; 0: the target has none, report SKIP for that check).
. /sf/iscsi-lib.sh

debug_dump() {
  timeout 10 multipath -ll 2>&1
  timeout 10 multipathd show paths format "%d %m %t %T %o %p" 2>&1
  tail -40 /tmp/mpd.log 2>/dev/null
  tail -5 /tmp/io-log 2>/dev/null
  iscsi_debug
}
mp_fail() { result multipath FAIL "$*"; debug_dump; touch /tmp/io-stop; }

# mp_login PORT: SendTargets discovery on SF_HOST:PORT (must return that portal), CHAP, fast path failure
# (replacement_timeout: a dead session fails its I/O to dm-multipath after 3 s), login; prints the sdX.
mp_login() {
  iscsiadm -m discovery -t sendtargets -p "$SF_HOST:$1" >/tmp/disc.$1 2>&1 || { cat /tmp/disc.$1 >&2; return 1; }
  grep -qx "$SF_HOST:$1,[0-9]* $SF_IQN" /tmp/disc.$1 || { echo "discovery on $1: $(cat /tmp/disc.$1)" >&2; return 1; }
  iscsi_node_setup "$SF_IQN" "$SF_HOST:$1" || return 1
  iscsi_set "$SF_IQN" "$SF_HOST:$1" node.session.timeo.replacement_timeout 3 || return 1
  iscsi_login "$SF_IQN" "$SF_HOST:$1"
}

mpd_ready() { timeout 10 multipathd show daemon 2>/dev/null | grep -qE "idle|running"; }
# path_state DEV: "<dm state> <checker state>" of DEV as multipathd sees it, e.g. "active ready".
path_state() { timeout 10 multipathd show paths format "%d %t %T" 2>/dev/null | awk -v d="$1" '$1 == d { print $2, $3 }'; }
# path_is DEV PATTERN: path_state of DEV matches the shell PATTERN.
path_is() {
  case $(path_state "$1") in $2) return 0 ;; esac
  return 1
}
# active_group_has DEV: DEV is in the path group multipath -ll marks status=active.
active_group_has() {
  timeout 10 multipath -ll 2>/dev/null | awk -v d="$1" '
    /policy=/ { act = ($0 ~ /status=active/) }
    { for (i = 1; i <= NF; i++) if ($i == d && act) found = 1 }
    END { exit !found }'
}
# group_prio DEV: prio= of the path group that holds DEV.
group_prio() {
  timeout 10 multipath -ll 2>/dev/null | awk -v d="$1" '
    /policy=/ { p = $0; sub(/.*prio=/, "", p); sub(/ .*/, "", p) }
    { for (i = 1; i <= NF; i++) if ($i == d) { print p; exit } }'
}

# io_loop DEV: until /tmp/io-stop exists, round r writes payload block (i + r) % SF_BLOCKS to block i with
# O_DIRECT and reads it back; a mismatch or an I/O error is recorded in /tmp/io-error. Every completed
# write+verify appends "<uptime> <round> <block>" to /tmp/io-log; /tmp/blk.<i> holds the source block last
# written to block i (for the final check).
io_loop() {
  r=0
  while [ ! -e /tmp/io-stop ]; do
    i=0
    while [ "$i" -lt "$SF_BLOCKS" ] && [ ! -e /tmp/io-stop ]; do
      src=$(((i + r) % SF_BLOCKS))
      if ! dd if=/dev/vda of="$1" bs=1M count=1 skip="$src" seek="$i" iflag=direct oflag=direct conv=fsync 2>/tmp/io-dd; then
        echo "write error block $i round $r: $(cat /tmp/io-dd)" >>/tmp/io-error
      else
        echo "$src" >/tmp/blk.$i
        got=$(sum_dev "$1" 1 "$i")
        [ "$got" = "$(sed -n "$((src + 1))p" /tmp/sums)" ] || echo "verify error block $i round $r" >>/tmp/io-error
      fi
      echo "$(up) $r $i" >>/tmp/io-log
      i=$((i + 1))
    done
    r=$((r + 1))
  done
}
io_count() { wc -l </tmp/io-log; }
io_at_least() { [ "$(io_count)" -ge "$1" ]; }
io_ok() { [ ! -s /tmp/io-error ]; }
# io_max_gap T: the longest wait for a completed I/O since T (the loop is sequential, so a request stuck on a
# dead path shows as one long gap).
io_max_gap() {
  awk -v t="$1" '$1 > t { g = $1 - t; if (g > m) m = g; t = $1 } END { printf "%.2f", m }' /tmp/io-log
}

mp_scenario() {
  t=$(up)
  iscsi_start || { mp_fail "iscsid did not start"; return; }
  pa=$(mp_login "$SF_PORT_A") || { mp_fail "login to A (port $SF_PORT_A) failed"; return; }
  pb=$(mp_login "$SF_PORT_B") || { mp_fail "login to B (port $SF_PORT_B) failed"; return; }
  udevadm settle --timeout=30
  lap logins "$t"
  info paths "A=$pa B=$pb"

  t=$(up)
  multipath >/tmp/mp.out 2>&1
  multipathd -d -s >/tmp/mpd.log 2>&1 &
  wait_for 30 mpd_ready || { mp_fail "multipathd did not start"; return; }
  lap multipath-setup "$t"
  multipath -ll 2>&1 | sed 's/^/INFO mp /'
  maps=$(dmsetup ls --target multipath 2>/dev/null | grep -c .)
  map=$(dmsetup ls --target multipath 2>/dev/null | awk 'NR == 1 { print $1 }')
  [ "$maps" = 1 ] || { mp_fail "$maps multipath maps, want 1"; return; }
  dev=/dev/mapper/$map
  for p in "$pa" "$pb"; do
    [ "$(path_state "$p")" = "active ready" ] || { mp_fail "path $p is '$(path_state "$p")'"; return; }
  done
  [ "$(blockdev --getsize64 "$dev")" = "$SF_SIZE" ] || { mp_fail "map size $(blockdev --getsize64 "$dev"), want $SF_SIZE"; return; }
  result multipath-map PASS "$map: 2 paths ($pa via A, $pb via B), both active ready"

  multipath -v3 -ll >/tmp/mp-v3.log 2>&1
  grep -E ': prio = |prio = [0-9]' /tmp/mp-v3.log | sed 's/^/INFO mp-prio /' | head -8
  prio_a=$(group_prio "$pa")
  prio_b=$(group_prio "$pb")
  if grep -q "$pa: prio = alua" /tmp/mp-v3.log && grep -q "$pb: prio = alua" /tmp/mp-v3.log &&
    [ "${prio_a:-0}" -gt "${prio_b:-0}" ] && active_group_has "$pa"; then
    result multipath-alua PASS "prio alua; A's group prio $prio_a active, B's group prio $prio_b"
  elif [ "$SF_ALUA" = 1 ]; then
    mp_fail "no ALUA grouping: prio A=$prio_a B=$prio_b, A active: $(active_group_has "$pa" && echo yes || echo no)"
    return
  else
    result multipath-alua SKIP "target reports no ALUA (prio A=$prio_a B=$prio_b)"
  fi

  # checksums of the payload blocks the loop writes
  i=0
  while [ "$i" -lt "$SF_BLOCKS" ]; do sum_file /dev/vda 1 "$i"; i=$((i + 1)); done >/tmp/sums
  rm -f /tmp/io-stop /tmp/io-error /tmp/blk.*
  : >/tmp/io-log
  io_loop "$dev" &
  loop=$!
  wait_for 60 io_at_least 4 || { mp_fail "I/O loop makes no progress"; return; }

  t_kill=$(up)
  n_kill=$(io_count)
  req kill-a
  wait_for 60 path_is "$pa" "failed *" || { mp_fail "path $pa not failed after A was killed"; return; }
  lap path-a-failed "$t_kill"
  # I/O must go on through B: SF_BLOCKS more verified operations after the kill
  wait_for 120 io_at_least $((n_kill + SF_BLOCKS)) ||
    { mp_fail "I/O stalled after A was killed"; return; }
  io_ok || { mp_fail "I/O error during failover: $(head -3 /tmp/io-error)"; return; }
  echo "TIME failover-io-stall $(io_max_gap "$t_kill")"
  active_group_has "$pb" || { mp_fail "B's path $pb is not in the active group after the failover"; return; }
  result multipath-failover PASS "A killed: $pa failed, I/O continued on $pb with no verify error"

  t_back=$(up)
  n_back=$(io_count)
  req restart-a
  wait_for 120 path_is "$pa" "active ready" || { mp_fail "path $pa did not come back after A restarted"; return; }
  lap path-a-reinstated "$t_back"
  if [ "$SF_ALUA" = 1 ]; then
    wait_for 30 active_group_has "$pa" || { mp_fail "no failback to A's group"; return; }
    lap failback "$t_back"
  fi
  wait_for 120 io_at_least $((n_back + SF_BLOCKS)) ||
    { mp_fail "I/O stalled after A came back"; return; }
  touch /tmp/io-stop
  wait "$loop"
  io_ok || { mp_fail "I/O error: $(head -3 /tmp/io-error)"; return; }
  result multipath-reinstate PASS "A restarted: $pa active ready again"

  # final check through the map: every block holds what the loop last wrote there
  echo 3 >/proc/sys/vm/drop_caches
  i=0
  while [ "$i" -lt "$SF_BLOCKS" ]; do
    src=$(cat /tmp/blk.$i 2>/dev/null) || { mp_fail "block $i never written"; return; }
    [ "$(sum_dev "$dev" 1 "$i")" = "$(sed -n "$((src + 1))p" /tmp/sums)" ] || { mp_fail "final verify: block $i"; return; }
    i=$((i + 1))
  done
  info io-ops "$(io_count) verified 1 MiB write+read operations"
  multipath -ll 2>&1 | sed 's/^/INFO mp /'

  multipathd shutdown >/dev/null 2>&1
  multipath -F >/dev/null 2>&1
  iscsiadm -m node --logoutall=all >/dev/null 2>&1
  result multipath PASS "one map, 2 paths, failover to B and back to A with no verify error"
}

mp_scenario
