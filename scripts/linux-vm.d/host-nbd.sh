# Host side of the nbd scenario: our target with a memory export, the guest's kernel NBD client against it
# (guest/nbd.sh), then host-side checks through a second client: the kept half holds the guest's data and the
# discarded half shows as a hole in `nbdinfo --map`.

scenario_nbd() {
  local size=$((128 * 1048576)) port map kept off len
  guest_payload "$MIB"
  start_target target-nbd --nbd 127.0.0.1:0 --export "demo=mem:$size" || return 1
  port=${TARGET_NBD##*:}
  say "target pid $TARGET_PID nbd 127.0.0.1:$port export demo ($size bytes, memory)"
  guest_params <<PARAMS
SF_HOST=10.0.2.2
SF_NBD_PORT=$port
SF_NBD_EXPORT=demo
SF_SIZE=$size
SF_MIB=$MIB
SF_DATA_SHA=$PAYLOAD_SHA
SF_HALF_SHA=$(payload_sha $((MIB / 2)))
PARAMS
  boot_guest "$HERE/guest/nbd.sh"
  guest_verdict nbd-size nbd-verify nbd || return 1

  read -r off len <<<"$(console_value discarded-range)"
  map=$(timeout 60 nbdinfo --map "nbd://127.0.0.1:$port/demo") || { say "nbdinfo --map failed"; return 1; }
  echo "$map" | sed "s/^/[$SCEN]   map: /"
  # Every extent overlapping the discarded range must be a hole (type bit 0); every extent before it data.
  if ! awk -v a="$off" -v b="$((off + len))" '
      { s = $1; e = $1 + $2; t = $3 }
      s < b && e > a && t % 2 != 1 { bad = 1 }
      e <= a && t % 2 != 0 { bad = 1 }
      END { exit bad }' <<<"$map"; then
    say "nbdinfo --map: discarded range [$off, $((off + len))) is not a hole or written range is not data"
    return 1
  fi
  say "RESULT host-map PASS discarded range [$off, $((off + len))) is a hole, written part is data"
  kept=$(timeout 60 nbdcopy "nbd://127.0.0.1:$port/demo" - 2>/dev/null | head -c "$off" | sha256sum | cut -d' ' -f1)
  [ "$kept" = "$(payload_sha $((off / 1048576)))" ] || { say "host read of the kept part differs from the payload"; return 1; }
  say "RESULT host-read PASS first $((off / 1048576)) MiB read back from the target equal the payload"
  return 0
}
