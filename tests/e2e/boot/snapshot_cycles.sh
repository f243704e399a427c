#!/bin/busybox sh
# Runs in the nested-SVM rig (run_boot_rig.sh puts it at /l2): snapshots on a real SVM KVM, through
# the CLI only. Every guest here is `cpumodel verify --hold` (vmm/src/hold_guest.S): vCPU 0 prints a
# running checksum, one 8-hex-digit line per 1024 iterations, the same sequence whatever the CPU
# model (same seed, general registers only). Lines are "@@SNAP ..." for snapshot_rig_test.cc.
#
#   snapshot_cycles.sh determinism MODEL CYCLES BUDGET_S SEED
#       verify --hold, then CYCLES times (or until BUDGET_S seconds have passed): after 1-3 more
#       lines and 0-90 ms, QMP snapshot-save (quit), then `cpumodel restore` in a fresh process,
#       all appending to one output. Then an uninterrupted run as long, and the two compared.
#       Keeps the uninterrupted run's lines in /tmp/ref.hex for `models`.
#   snapshot_cycles.sh models HOST_PROFILE DUMP_DIR MODEL[/SMP]...
#       per model: verify --hold, snapshot-save (quit), state inspect, migrate-check --state against
#       HOST_PROFILE (this host) and then restore here (the output must go on as /tmp/ref.hex), and
#       migrate-check --state against every profile in DUMP_DIR.
#   snapshot_cycles.sh linux HOST_PROFILE BOOT_ARGS...
#       boots Linux (`cpumodel boot`, l2test=shell) with QMP, snapshot-save at its prompt, restore
#       in a fresh process, and the line typed there must be answered.
# Environment: SNAP_WORK (default /tmp: where the files go), SNAP_TRACE=1 (step lines, heartbeat).
mkdir -p /tmp/bb && /bin/busybox --install -s /tmp/bb
export PATH="$PATH:/tmp/bb"
W="${SNAP_WORK:-/tmp}"
hex='^[0-9a-f]\{8\}$'

# Centiseconds since boot.
now() { read -r up _ < /proc/uptime; echo $((${up%.*} * 100 + 1${up#*.} - 100)); }
# Complete checksum lines in FILE.
lines() { grep -c "$hex" "$1" 2>/dev/null || true; }
# Until FILE has N checksum lines or process PID ended (at most ~60 s). 0 when there.
wait_lines() {
  i=0
  while [ "$(lines "$1")" -lt "$2" ]; do
    kill -0 "$3" 2>/dev/null || return 1
    i=$((i + 1)); [ $i -gt 3000 ] && return 1
    sleep 0.02
  done
}
wait_socket() {
  i=0
  until [ -S "$1" ]; do
    kill -0 "$2" 2>/dev/null || return 1
    i=$((i + 1)); [ $i -gt 3000 ] && return 1
    sleep 0.02
  done
}
# Waits for process PID (a child) to end, at most SECONDS; then prints where its threads are and
# kills it. Sets rc to its exit code (124 when it had to be killed).
reap() {
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt $(($2 * 10)) ]; then
      echo "@@SNAP hang $3: pid $1 still running after $2 s"
      for t in /proc/$1/task/*; do
        echo "@@SNAP hang $3: $(tr ' ' _ < $t/comm) $(sed 's/.*) //' $t/stat | cut -d' ' -f1) $(cat $t/wchan 2>/dev/null)"
      done
      kill -9 "$1"
      wait "$1"
      rc=124
      return 124
    fi
    sleep 0.1
  done
  wait "$1"; rc=$?
  return $rc
}
rnd=1
next() { rnd=$(((rnd * 1103515245 + 12345) % 2147483648)); r=$((rnd / 65536)); }
# The checksum stream of FILE (from the first checksum line on; partial lines of processes that
# were snapshotted mid-line are completed by the next process's first bytes).
stream() { sed -n "/$hex/,\$p" "$1"; }

determinism() {
  model="$1" cycles="$2" budget="$3" rnd="$4"
  out=$W/chain.out err=$W/chain.err
  : > $out; : > $err
  t0=$(now)
  trace "verify --hold"
  cpumodel verify --cpu "$model" --hold --qmp unix:$W/c0.qmp >> $out 2>> $err &
  pid=$!
  wait_socket $W/c0.qmp $pid || { echo "@@SNAP error verify --hold did not start"; cat $err; return 1; }
  n=0 save_ms=0 restore_cs=0
  while [ $n -lt "$cycles" ] && [ $(($(now) - t0)) -lt $((budget * 100)) ]; do
    trace "cycle $n: wait for output"
    next; want=$(($(lines $out) + 1 + r % 3))
    wait_lines $out $want $pid || { echo "@@SNAP error cycle $n: no output (process $pid)"; cat $err; return 1; }
    next; [ $((r % 10)) -gt 0 ] && sleep 0.0$((r % 10))
    snap=$W/s$((n % 2)).snap
    trace "cycle $n: snapshot-save"
    reply=$(cpumodel qmp --qmp unix:$W/c$n.qmp snapshot-save --arguments "{\"path\": \"$snap\", \"quit\": true}" 2>&1) ||
      { echo "@@SNAP error cycle $n: snapshot-save: $reply"; return 1; }
    trace "cycle $n: saved ($reply), wait for exit"
    reap $pid 60 "cycle $n"
    # verify --hold exits 1 when the probe saw differences (not this test's question); restore 0.
    [ $rc -eq 0 ] || { [ $n -eq 0 ] && [ $rc -eq 1 ]; } || { echo "@@SNAP error cycle $n: exit $rc"; cat $err; return 1; }
    ms=$(echo "$reply" | sed -n 's/.*"ms": \([0-9]*\).*/\1/p'); save_ms=$((save_ms + ${ms:-0}))
    echo "@@SNAP cycle $n lines $(lines $out) save_ms ${ms:-?}"
    n=$((n + 1))
    verify=--no-verify-memory; [ $((n % 10)) -eq 0 ] && verify=
    t1=$(now)
    trace "cycle $n: restore"
    cpumodel restore $snap $verify --qmp unix:$W/c$n.qmp >> $out 2>> $err &
    pid=$!
    wait_socket $W/c$n.qmp $pid || { echo "@@SNAP error cycle $n: restore did not start"; cat $err; return 1; }
    restore_cs=$((restore_cs + $(now) - t1))
  done
  wait_lines $out $(($(lines $out) + 2)) $pid
  cpumodel qmp --qmp unix:$W/c$n.qmp quit > /dev/null
  reap $pid 60 "last restore" || { echo "@@SNAP error last restore: exit $rc"; cat $err; return 1; }
  t=$(($(now) - t0))
  stream $out | grep "$hex" > $W/chain.hex
  total=$(wc -l < $W/chain.hex)
  bad=$(stream $out | sed '$d' | grep -vc "$hex")
  # The uninterrupted run, as long (plus a margin for `models`).
  t2=$(now)
  cpumodel verify --cpu "$model" --hold --qmp unix:$W/ref.qmp > $W/ref.out 2> /dev/null &
  pid=$!
  wait_socket $W/ref.qmp $pid && wait_lines $W/ref.out $((total + 40)) $pid
  cpumodel qmp --qmp unix:$W/ref.qmp quit > /dev/null
  reap $pid 60 reference
  t3=$(($(now) - t2))
  grep "$hex" $W/ref.out > $W/ref.hex
  head -n "$total" $W/ref.hex > $W/ref.prefix
  same=no; cmp -s $W/chain.hex $W/ref.prefix && same=yes
  echo "@@SNAP determinism model $model cycles $n lines $total bad_lines $bad identical $same"
  echo "@@SNAP md5 chain $(md5sum < $W/chain.hex | cut -c1-32) reference $(md5sum < $W/ref.prefix | cut -c1-32)"
  echo "@@SNAP last chain $(tail -n 1 $W/chain.hex) reference $(tail -n 1 $W/ref.prefix)"
  echo "@@SNAP time cycles_cs $t save_ms_total $save_ms restore_to_qmp_cs_total $restore_cs reference_cs $t3 reference_lines $(wc -l < $W/ref.hex)"
  [ -s $err ] && sed 's/^/@@SNAP stderr /' $err | grep -v warning | head -5
  [ $same = yes ] || diff $W/ref.prefix $W/chain.hex | head -20
  [ $same = yes ]
}

# Snapshot of MODEL with SMP vCPUs after 2 lines; FILE gets the output. Prints nothing.
save_model() {
  model="$1" smp="$2" snap="$3" out="$4" sock=$W/m.qmp
  trace "$model: verify --hold"
  rm -f $sock
  cpumodel verify --cpu "$model" --smp "$smp" --hold --qmp unix:$sock > $out 2> $W/m.err &
  pid=$!
  wait_socket $sock $pid && wait_lines $out 2 $pid || { cat $W/m.err; return 1; }
  reply=$(cpumodel qmp --qmp unix:$sock snapshot-save --arguments "{\"path\": \"$snap\", \"quit\": true}" 2>&1) ||
    { echo "@@SNAP error $model: snapshot-save: $reply"; reap $pid 5 "$model verify"; return 1; }
  reap $pid 60 "$model verify"
  [ $rc -le 1 ]
}

models() {
  host="$1" dumps="$2"; shift 2
  [ -s $W/ref.hex ] || { echo "@@SNAP error no $W/ref.hex (run determinism first)"; return 1; }
  fails=0
  for arg in "$@"; do
    model="${arg%/*}" smp=1; [ "$arg" != "$model" ] && smp="${arg#*/}"
    snap=$W/$model.snap out=$W/$model.out
    save_model "$model" "$smp" $snap $out || { echo "@@SNAP error $model: no snapshot"; fails=$((fails + 1)); continue; }
    cpumodel state inspect $snap | sed -n "s/^ *\([0-9][0-9]*  .*\)/@@SNAP inspect $model \1/p; s/^  cpu *\(.*\)/@@SNAP inspect $model cpu \1/p"
    cpumodel migrate-check --state $snap --to "$host" > $W/check 2>&1; rc=$?
    echo "@@SNAP check $model host $rc"
    sed "s/^/@@SNAP checktext $model host /" $W/check
    # The false "ok" hunt: where the check says ok, the guest must resume and go on exactly.
    before=$(lines $out)
    rm -f $W/r.qmp
    cpumodel restore $snap --qmp unix:$W/r.qmp >> $out 2> $W/r.err &
    pid=$!
    wait_socket $W/r.qmp $pid && wait_lines $out $((before + 3)) $pid
    cpumodel qmp --qmp unix:$W/r.qmp quit > /dev/null 2>&1
    reap $pid 60 "$model restore"
    stream $out | grep "$hex" > $W/m.hex
    got=$(wc -l < $W/m.hex)
    same=no; head -n "$got" $W/ref.hex | cmp -s - $W/m.hex && same=yes
    echo "@@SNAP resume $model exit $rc lines_before $before lines $got identical $same"
    [ -s $W/r.err ] && sed "s/^/@@SNAP resume-stderr $model /" $W/r.err | head -3
    for d in "$dumps"/*; do
      [ -e "$d" ] || continue
      name=${d##*/}
      cpumodel migrate-check --state $snap --to "$d" > $W/check 2>&1; rc=$?
      echo "@@SNAP check $model $name $rc"
      sed "s/^/@@SNAP checktext $model $name /" $W/check
    done
    rm -f $snap $snap.mem
  done
  [ $fails -eq 0 ]
}

# Linux at its prompt (BOOT_ARGS with l2test=shell: its /init waits for a line on the console and
# runs it with /bin/sh -c): snapshot-save (quit), state inspect and migrate-check --state against
# HOST_PROFILE, then `cpumodel restore` in a fresh process; the shell line typed there must run in
# the guest (RESUMED-42), which then powers off (restore exits 0).
#   snapshot_cycles.sh linux HOST_PROFILE BOOT_ARGS...
linux() {
  host="$1"; shift
  q=$W/l2.qmp out=$W/l2.out
  rm -f $W/l2.in; mkfifo $W/l2.in  # hold_test.sh (boot_rig section 2) made one of its own
  exec 3<>$W/l2.in
  trace "linux: boot"
  cpumodel boot "$@" --qmp unix:$q <&3 > $out 2>&1 &
  vm=$!
  n=0 why=
  until grep -q "@@L2 ready" $out; do
    n=$((n + 1)); [ $n -gt 600 ] && { why="no prompt after $n polls"; break; }
    kill -0 $vm 2>/dev/null || { why="boot process $vm gone after $n polls"; break; }
    sleep 0.5
  done
  echo "@@SNAP linux ready $(grep -c '@@L2 ready' $out)${why:+ ($why, uptime $(cut -d' ' -f1 /proc/uptime))}"
  # Not ready: the boot's last lines, to tell a slow guest from a stuck one.
  [ -z "$why" ] || tail -n 5 $out | sed 's/^/@@SNAP linux out /'
  # A boot that ended before its prompt: how it ended (boot_rig_test.cc reruns an early death).
  kill -0 $vm 2>/dev/null || grep 'cpumodel: ' $out | grep -v warning | sed 's/^/@@SNAP linux boot /'
  trace "linux: snapshot-save"
  reply=$(cpumodel qmp --qmp unix:$q snapshot-save --arguments "{\"path\": \"$W/l2.snap\", \"quit\": true}" 2>&1)
  saved=$?
  echo "@@SNAP linux snapshot-save exit $saved $reply"
  if [ $saved -eq 0 ]; then
    reap $vm 60 "linux first"
    echo "@@SNAP linux first-exit $rc"
    cpumodel state inspect $W/l2.snap | sed -n 's/^  devices  /@@SNAP linux devices /p; s/^  memory   /@@SNAP linux memory /p'
    cpumodel migrate-check --state $W/l2.snap --to "$host" > $W/check 2>&1
    echo "@@SNAP linux check $?"
    sed 's/^/@@SNAP linux checktext /' $W/check
    trace "linux: restore"
    t1=$(now)
    cpumodel restore $W/l2.snap --qmp unix:$W/l2r.qmp <&3 > $W/l2r.out 2>&1 &
    vm=$! out=$W/l2r.out
    wait_socket $W/l2r.qmp $vm
    echo "@@SNAP linux restore_to_qmp_cs $(($(now) - t1))"
    cpumodel vcpus --qmp unix:$W/l2r.qmp | sed 's/^/@@SNAP linux vcpus /'
    sleep 1
  fi
  trace "linux: type a line"
  echo 'echo RESUMED-$((6*7))' >&3
  reap $vm 300 linux
  echo "@@SNAP linux exit $rc"
  grep '@@L2 ran\|RESUMED-\|@@L2 poweroff\|powered off\|error' $out | sed 's/^/@@SNAP linux /'
  return $rc
}

# SNAP_TRACE=1: a heartbeat every 10 s (uptime, load, cpumodel processes and their state) and
# a line per step, to tell a hung rig from a hung step.
trace() { [ "${SNAP_TRACE:-}" = 1 ] && echo "@@TRACE $(cut -d' ' -f1 /proc/uptime) $*"; return 0; }
if [ "${SNAP_TRACE:-}" = 1 ]; then
  (
    while sleep 10; do
      trace "heartbeat load $(cut -d' ' -f1-3 /proc/loadavg)"
      for p in /proc/[0-9]*; do
        [ "$(cat $p/comm 2>/dev/null)" = cpumodel ] || continue
        for t in $p/task/*; do
          trace "  ${p#/proc/} $(tr ' ' _ < $t/comm) $(sed 's/.*) //' $t/stat | cut -d' ' -f1) $(cat $t/wchan 2>/dev/null)"
        done
      done
    done
  ) &
  heartbeat=$!
  trap 'kill $heartbeat 2>/dev/null' EXIT
fi

# A paused `verify --hold` VM kept open for the whole run. Without it every cycle takes the
# rig's KVM from no VM to one and back, and each time Linux enables SVM on every CPU by IPI and
# flips the preempt-notifier static key (kvm_create_vm: preempt_notifier_inc), patching
# __schedule through int3 (text_poke_bp). Under QEMU 7.2's TCG that patching livelocks the rig
# now and then (seen 4 times in ~300 VM lifetimes: one vCPU looping asm_exc_int3 ->
# __schedule+683, the other spinning in try_to_wake_up with interrupts off; the whole rig froze).
keeper=
keeper_start() {
  cpumodel verify --cpu qemu64 --hold --qmp unix:$W/keeper.qmp > /dev/null 2>&1 &
  keeper=$!
  wait_socket $W/keeper.qmp $keeper && cpumodel qmp --qmp unix:$W/keeper.qmp stop > /dev/null
}
keeper_stop() {
  [ -n "$keeper" ] || return 0
  cpumodel qmp --qmp unix:$W/keeper.qmp quit > /dev/null 2>&1
  reap $keeper 30 keeper
}

mode="$1"; shift
trace "keeper VM"
keeper_start || echo "@@SNAP warning: no keeper VM"
case "$mode" in
  determinism) determinism "$@" ;;
  models) models "$@" ;;
  linux) linux "$@" ;;
  *) echo "snapshot_cycles.sh: unknown mode '$mode'" >&2; false ;;
esac
status=$?
keeper_stop
exit $status
