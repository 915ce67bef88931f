# Host-side helpers of scripts/linux-vm (sourced, bash): start/stop our servers by PID, boot the guest under
# QEMU (TCG) with a per-run overlay initramfs, follow its serial console, and record per-scenario outcomes.
# Globals set by the runner: ROOT, CACHE, RUN (this run's temp dir), VM_TIMEOUT, SCEN (current scenario).

PIDS=()          # every process this run started; cleanup ends them by PID
QEMU_PID=

# now / since T: wall clock in seconds (for host-side timings).
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
say() { echo "[$SCEN] $*"; }

# stop_pid PID [GRACE_S]: SIGTERM, wait up to GRACE_S (default 5) for it to end, then SIGKILL.
stop_pid() {
  local pid=$1 grace=${2:-5} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
stop_all() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
}

# start_server NAME LOGFILE READY_REGEX CMD...: start CMD in the background (stdout+stderr to LOGFILE), remember
# its PID in SERVER_PID and PIDS, and wait (30 s) until LOGFILE matches READY_REGEX. 1 if it exits or times out.
start_server() {
  local name=$1 log=$2 ready=$3 i
  shift 3
  "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for ((i = 0; i < 300; i++)); do
    grep -qE "$ready" "$log" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "FAIL $name did not become ready; its log:"
  tail -20 "$log" | sed "s/^/[$SCEN]   /"
  return 1
}

# start_target NAME ARGS...: run `sheepfold target --json ARGS` from the build; sets TARGET_PID and
# TARGET_NBD / TARGET_ISCSI (the bound HOST:PORT of each front end from the ready line).
start_target() {
  local name=$1 log
  shift
  log=$RUN/$name.log
  start_server "$name" "$log" '"ready":true' node "$SHEEPFOLD_JS" target --json --log-level "${LINUX_VM_LOG_LEVEL:-warn}" "$@" ||
    return 1
  TARGET_PID=$SERVER_PID
  TARGET_NBD=$(grep -m1 '"ready":true' "$log" | grep -o '"nbd":"[^"]*"' | cut -d'"' -f4)
  TARGET_ISCSI=$(grep -m1 '"ready":true' "$log" | grep -o '"iscsi":"[^"]*"' | cut -d'"' -f4)
  return 0
}

# start_cluster VDI SIZE [NODES]: a fresh Sheepfold cluster of NODES sheep (default 1; more share a `local:`
# cluster directory) on free ports, formatted with `dog cluster format` (copies = NODES), with one VDI of SIZE
# bytes; sets SHEEP_PORTS (array) and SHEEP_PORT (the first).
start_cluster() {
  local vdi=$1 size=$2 nodes=${3:-1} i port cluster=() n
  SHEEP_PORTS=()
  [ "$nodes" -gt 1 ] && cluster=(--cluster "local:$RUN/cluster") && mkdir -p "$RUN/cluster"
  for ((i = 1; i <= nodes; i++)); do
    mkdir -p "$RUN/sheep$i"
    port=0
    [ "$nodes" -gt 1 ] && port=$(free_port)
    start_server "sheep$i" "$RUN/sheep$i.log" '"sheep_ready"' \
      node "$SHEEPFOLD_JS" sheep --store "$RUN/sheep$i" --port "$port" "${cluster[@]}" --json --log-level warn || return 1
    SHEEP_PORTS+=("$(grep -m1 '"sheep_ready"' "$RUN/sheep$i.log" | grep -o '"port":[0-9]*' | cut -d: -f2)")
    say "sheep$i pid $SERVER_PID 127.0.0.1:${SHEEP_PORTS[-1]}"
  done
  SHEEP_PORT=${SHEEP_PORTS[0]}
  for ((i = 0; i < 100; i++)); do
    n=$(node "$DOG_JS" node list -p "$SHEEP_PORT" -r 2>/dev/null | grep -c .)
    [ "$n" -ge "$nodes" ] && break
    sleep 0.2
  done
  [ "$n" -ge "$nodes" ] || { say "only $n of $nodes sheep joined the cluster"; return 1; }
  node "$DOG_JS" cluster format -p "$SHEEP_PORT" -c "$nodes" -f >"$RUN/dog.log" 2>&1 &&
    node "$DOG_JS" vdi create -p "$SHEEP_PORT" "$vdi" "$size" >>"$RUN/dog.log" 2>&1 ||
    { say "dog cluster format / vdi create failed:"; sed "s/^/[$SCEN]   /" "$RUN/dog.log"; return 1; }
  say "cluster of $nodes sheep formatted (copies $nodes), VDI $vdi ($size bytes)"
}

# export_args NAME SIZE: the target arguments exporting disk NAME of SIZE bytes from the backend chosen by
# LINUX_VM_BACKEND: vdi (default; starts a fresh cluster, see start_cluster) or mem (a memory export); sets
# EXPORT_ARGS.
export_args() {
  case ${LINUX_VM_BACKEND:-vdi} in
    vdi)
      start_cluster "$1" "$2" || return 1
      EXPORT_ARGS=(--sheep "127.0.0.1:$SHEEP_PORT" --export "$1=$1")
      ;;
    mem) EXPORT_ARGS=(--export "$1=mem:$2") ;;
    *) say "unknown LINUX_VM_BACKEND '${LINUX_VM_BACKEND}' (vdi or mem)"; return 1 ;;
  esac
}

# guest_file SRC DEST: put SRC into this boot's overlay at DEST (absolute path inside the guest).
guest_file() {
  mkdir -p "$RUN/overlay$(dirname "$2")"
  cp "$1" "$RUN/overlay$2"
}
# guest_payload MIB: MIB MiB of random data, given to the guest as a read-only virtio disk (/dev/vda; loading it
# as part of the initramfs is far slower under TCG) and kept so the host can check what the guest wrote; sets
# PAYLOAD_SHA (sha256 of the whole payload).
guest_payload() {
  head -c "$(($1 * 1048576))" /dev/urandom >"$RUN/payload.img"
  PAYLOAD_SHA=$(sha256sum "$RUN/payload.img" | cut -d' ' -f1)
}
# payload_sha MIB [SKIP_MIB]: sha256 of a slice of the payload.
payload_sha() { dd if="$RUN/payload.img" bs=1M count="$1" skip="${2:-0}" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# guest_params: write stdin (shell assignments) to the guest's /etc/sf-params.
guest_params() {
  mkdir -p "$RUN/overlay/etc"
  cat >"$RUN/overlay/etc/sf-params"
}

# boot_guest SCENARIO [ON_REQ_FUNCTION]: boot the guest with /init and every guest/*.sh under /sf (init runs
# /sf/SCENARIO.sh) plus whatever guest_file/guest_params put in the overlay; follow the console until QEMU
# exits, echoing the protocol lines and calling ON_REQ_FUNCTION ACTION for every "REQ ACTION" line. The console
# is kept in $RUN/console.log. Returns QEMU's exit status (124 = timeout).
boot_guest() {
  local scenario=$1 on_req=${2:-} seen=0 total line t0 rc f
  guest_file "$HERE/guest/init.sh" /init
  chmod 755 "$RUN/overlay/init"
  [ -n "${SCEN_T0:-}" ] && say "TIME host-setup $(since "$SCEN_T0")"
  for f in "$HERE"/guest/*.sh; do guest_file "$f" "/sf/$(basename "$f")"; done
  printf 'SF_SCENARIO=%s\nSF_WATCHDOG=%s\n' "$scenario" "$((VM_TIMEOUT > 120 ? VM_TIMEOUT - 60 : VM_TIMEOUT / 2))" >>"$RUN/overlay/etc/sf-params"
  # The kernel unpacks concatenated archives in order; the overlay's files are added to the base image's.
  (cd "$RUN/overlay" && find . | LC_ALL=C sort | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$RUN/overlay.cpio.gz"
  cat "$CACHE/base.cpio.gz" "$RUN/overlay.cpio.gz" >"$RUN/initrd.img"
  : >"$RUN/console.log"
  local disk=()
  [ -f "$RUN/payload.img" ] && disk=(-drive "file=$RUN/payload.img,if=virtio,format=raw,readonly=on")
  t0=$(now)
  timeout --kill-after=5 "$VM_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 \
    -display none -no-reboot -monitor none -serial "file:$RUN/console.log" \
    -kernel "$CACHE/vmlinuz" -initrd "$RUN/initrd.img" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0 ${LINUX_VM_PCAP:+-object filter-dump,id=f0,netdev=n0,file=$LINUX_VM_PCAP} "${disk[@]}" </dev/null >"$RUN/qemu.log" 2>&1 &
  QEMU_PID=$!
  PIDS+=("$QEMU_PID")
  while :; do
    local alive=0
    kill -0 "$QEMU_PID" 2>/dev/null && alive=1
    total=$(wc -l <"$RUN/console.log")
    if [ "$total" -gt "$seen" ]; then
      while IFS= read -r line; do
        line=${line%$'\r'}
        case $line in
          TIME\ boot\ *) say "$line"; say "TIME host-boot $(since "$t0")" ;;
          RESULT\ * | TIME\ * | RATE\ * | INFO\ * | DONE) say "$line" ;;
          REQ\ *) say "$line"; [ -n "$on_req" ] && "$on_req" "${line#REQ }" ;;
        esac
      done < <(sed -n "$((seen + 1)),${total}p" "$RUN/console.log")
      seen=$total
    fi
    [ "$alive" = 1 ] || break
    sleep 0.2
  done
  wait "$QEMU_PID"
  rc=$?
  QEMU_PID=
  say "TIME vm-wall $(since "$t0")"
  [ "$rc" = 124 ] && say "QEMU timed out after ${VM_TIMEOUT}s"
  return "$rc"
}

# console_value KEY: the value of the last "INFO KEY VALUE" line of this boot's console.
console_value() { tr -d '\r' <"$RUN/console.log" | awk -v k="$1" '$1 == "INFO" && $2 == k { $1 = ""; $2 = ""; v = $0 } END { sub(/^ +/, "", v); print v }'; }
# console_has REGEX: the console has a (CR-stripped) line matching REGEX.
console_has() { tr -d '\r' <"$RUN/console.log" | grep -qE "$1"; }

# guest_verdict CHECKS...: 0 if the console has "DONE", a "RESULT <check> PASS" line for every CHECK and no
# RESULT FAIL line; otherwise print why plus the console tail and return 1.
guest_verdict() {
  local c bad=0
  console_has '^DONE$' || { say "guest did not finish (no DONE line)"; bad=1; }
  for c in "$@"; do console_has "^RESULT $c PASS" || { say "guest did not report '$c' PASS"; bad=1; }; done
  console_has '^RESULT [^ ]+ FAIL' && bad=1
  if [ "$bad" = 1 ]; then
    say "console tail:"
    tr -d '\r' <"$RUN/console.log" | tail -60 | sed "s/^/[$SCEN]   /"
    return 1
  fi
  return 0
}

# check_discarded_export NBD_PORT EXPORT: after a guest wrote the payload to EXPORT and discarded the range it
# reported as "INFO discarded-range OFFSET LENGTH", check through our target's NBD front end that
# `nbdinfo --map` shows that range as a hole and the part before it as data, and that the part before it
# holds the payload's bytes.
check_discarded_export() {
  local port=$1 export=$2 map off len kept
  read -r off len <<<"$(console_value discarded-range)"
  [ -n "$off" ] || { say "guest reported no discarded range"; return 1; }
  map=$(timeout 60 nbdinfo --map "nbd://127.0.0.1:$port/$export") || { say "nbdinfo --map failed"; return 1; }
  echo "$map" | sed "s/^/[$SCEN]   map: /"
  # Every extent overlapping the discarded range must be a hole (type bit 0); every extent before it data.
  if ! awk -v a="$off" -v b="$((off + len))" '
      { s = $1; e = $1 + $2; t = $3 }
      s < b && e > a && t % 2 != 1 { bad = 1 }
      e <= a && t % 2 != 0 { bad = 1 }
      END { exit bad }' <<<"$map"; then
    say "nbdinfo --map: discarded range [$off, $((off + len))) is not a hole or the written range is not data"
    return 1
  fi
  say "RESULT host-map PASS discarded range [$off, $((off + len))) is a hole, the written part is data"
  kept=$(timeout 60 nbdcopy "nbd://127.0.0.1:$port/$export" - 2>/dev/null | head -c "$off" | sha256sum | cut -d' ' -f1)
  [ "$kept" = "$(payload_sha $((off / 1048576)))" ] || { say "host read of the kept part differs from the payload"; return 1; }
  say "RESULT host-read PASS first $((off / 1048576)) MiB read back through NBD equal the payload"
  if [ -n "${SHEEP_PORT:-}" ]; then
    # and straight from the cluster, past the target
    kept=$(timeout 120 node "$DOG_JS" vdi read -p "$SHEEP_PORT" "$export" 0 "$off" 2>/dev/null | sha256sum | cut -d' ' -f1)
    [ "$kept" = "$(payload_sha $((off / 1048576)))" ] || { say "dog vdi read of the kept part differs from the payload"; return 1; }
    say "RESULT host-dog-read PASS first $((off / 1048576)) MiB read with dog vdi read equal the payload"
  fi
  return 0
}

# free_port: a TCP port on 127.0.0.1 that is free right now (for servers whose address must be known before
# they start, e.g. an advertised iSCSI portal).
free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
