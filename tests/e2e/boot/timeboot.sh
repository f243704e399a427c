#!/bin/busybox sh
# Runs in the rig: times one level-2 boot. usage: sh /l2/timeboot.sh NAME COMMAND...
# Starts COMMAND with its output in a file, then every 0.1 s notes whether the guest's /init has
# written "@@L2 init" yet and the VMM's peak RSS (VmHWM), until COMMAND ends. Prints
#   @@BENCH NAME init_ms MS peak_rss_kib KIB exit CODE
# and COMMAND's output. Both VMMs are measured the same way (10 ms /proc/uptime, 0.1 s polling).
name="$1"; shift
out=/tmp/bench-$name.out
ms() { /bin/busybox awk '{printf "%d", $1 * 1000}' /proc/uptime; }
start=$(ms)
"$@" > $out 2>&1 < /dev/null &
pid=$!
init=-1 hwm=0
while [ -d /proc/$pid ]; do
  h=$(/bin/busybox awk '/^VmHWM:/ {print $2}' /proc/$pid/status 2>/dev/null)
  [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
  if [ "$init" = -1 ] && /bin/busybox grep -q "@@L2 init" $out; then init=$(( $(ms) - start )); fi
  /bin/busybox usleep 100000
done
wait $pid
rc=$?
if [ "$init" = -1 ] && /bin/busybox grep -q "@@L2 init" $out; then init=$(( $(ms) - start )); fi
echo "@@BENCH $name init_ms $init peak_rss_kib $hwm exit $rc"
/bin/busybox grep -v "^\[" $out
