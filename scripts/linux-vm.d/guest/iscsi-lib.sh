# open-iscsi helpers for the guest scenarios (sourced; busybox sh). iscsid runs without systemd; node records
# live in /etc/iscsi (tmpfs-backed rootfs, fresh each boot).

# iscsi_start: write the initiator name (SF_INITIATOR) and start iscsid; 0 once it answers.
iscsi_start() {
  mkdir -p /etc/iscsi/nodes /etc/iscsi/send_targets /run/lock/iscsi /var/lib/iscsi
  echo "InitiatorName=$SF_INITIATOR" >/etc/iscsi/initiatorname.iscsi
  echo 16777216 >/proc/sys/net/core/rmem_max
  iscsid -f -d "${SF_ISCSID_DEBUG:-1}" >/tmp/iscsid.log 2>&1 &
  wait_for 20 sh -c 'iscsiadm -m session 2>&1 | grep -q "No active sessions"'
}

# iscsi_set IQN PORTAL NAME VALUE: update one setting of a node record.
iscsi_set() { iscsiadm -m node -T "$1" -p "$2" -o update -n "$3" -v "$4" >/dev/null; }

# iscsi_node_setup IQN PORTAL: one-way CHAP with SF_CHAP_USER / SF_CHAP_SECRET on the node record, plus the
# login retry and TCP window settings every scenario uses.
iscsi_node_setup() {
  iscsi_set "$1" "$2" node.session.auth.authmethod CHAP &&
    iscsi_set "$1" "$2" node.session.auth.username "$SF_CHAP_USER" &&
    iscsi_set "$1" "$2" node.session.auth.password "$SF_CHAP_SECRET" &&
    # a dead portal fails the login in seconds instead of ~2 minutes of retries
    iscsi_set "$1" "$2" node.session.initial_login_retry_max 2 &&
    # The stock 512 KiB receive window fills up under TCG; the guest then advertises a zero window and only
    # QEMU user networking's ~5 s persist timer reopens it (reads of 512 KiB+ ran at ~1 MB/s, with tgtd too).
    # iscsi_start raises net.core.rmem_max so this size takes effect.
    iscsi_set "$1" "$2" node.conn[0].tcp.window_size 4194304
}

# iscsi_disk PORTAL: the sdX attached through the session on PORTAL (empty if none yet).
iscsi_disk() {
  iscsiadm -m session -P3 2>/dev/null | awk -v p="$1" '
    /Current Portal:/ { cur = $3 }
    /Attached scsi disk/ { if (index(cur, p) == 1) { print $4; exit } }'
}

# iscsi_login IQN PORTAL: log in; prints the sdX that appears (waits up to 30 s for it).
iscsi_login() {
  iscsiadm -m node -T "$1" -p "$2" --login >/tmp/login.log 2>&1 || { cat /tmp/login.log >&2; return 1; }
  _i=0
  while [ $_i -lt 150 ]; do
    _d=$(iscsi_disk "$2")
    [ -n "$_d" ] && [ -b "/dev/$_d" ] && { echo "$_d"; return 0; }
    sleep 0.2; _i=$((_i + 1))
  done
  return 1
}

# iscsi_debug: what the initiator thinks, for a failure report.
iscsi_debug() {
  iscsiadm -m session -P3 2>&1 | head -40
  tail -${SF_ISCSID_TAIL:-60} /tmp/iscsid.log
  dmesg | tail -20
}

# wwid_ok WWID: the kernel's WWID is the NAA designator the host read (SF_NAA: its leading bytes), 16 bytes.
wwid_ok() {
  case $1 in "naa.$SF_NAA"*) ;; *) return 1 ;; esac
  [ "${#1}" = 36 ] && echo "${1#naa.}" | grep -qE '^[0-9a-f]{32}$'
}
