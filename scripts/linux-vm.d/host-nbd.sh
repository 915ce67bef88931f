# Host side of the nbd scenario: our target exporting a fresh VDI (or a memory disk, see export_args), the guest's kernel NBD client against it
# (guest/nbd.sh), then host-side checks through a second client (check_discarded_export).

scenario_nbd() {
  local size=$((128 * 1048576)) port
  guest_payload "$MIB"
  export_args demo "$size" || return 1
  start_target target-nbd --nbd 127.0.0.1:0 "${EXPORT_ARGS[@]}" || return 1
  port=${TARGET_NBD##*:}
  say "target pid $TARGET_PID nbd 127.0.0.1:$port export demo ($size bytes, ${LINUX_VM_BACKEND:-vdi})"
  guest_params <<PARAMS
SF_HOST=10.0.2.2
SF_NBD_PORT=$port
SF_NBD_EXPORT=demo
SF_SIZE=$size
SF_MIB=$MIB
SF_DATA_SHA=$PAYLOAD_SHA
SF_HALF_SHA=$(payload_sha $((MIB / 2)))
PARAMS
  boot_guest nbd
  guest_verdict nbd-size nbd-verify nbd || return 1
  check_discarded_export "$port" demo
}
