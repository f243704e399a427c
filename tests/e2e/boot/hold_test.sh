#!/bin/busybox sh
# Runs in the rig: boots the level-2 guest (`cpumodel boot "$@"`, with l2test=hold on its command
# line) in the background with a QMP socket, waits until its /init is up, then asks QMP and /proc
# about the vCPU threads, pauses and resumes it, and lets it power off by typing a line.
q=/tmp/l2.qmp out=/tmp/l2.out
/bin/busybox mkfifo /tmp/l2.in
exec 3<>/tmp/l2.in
cpumodel boot "$@" --qmp unix:$q <&3 >$out 2>&1 &
vm=$!
n=0
until /bin/busybox grep -q "@@L2 ready" $out; do
  n=$((n + 1)); [ $n -gt 400 ] && break
  kill -0 $vm 2>/dev/null || break  # the VM ended (its output says why)
  /bin/busybox sleep 1
done
echo "@@HOLD status $(cpumodel qmp --qmp unix:$q query-status)"
cpumodel vcpus --qmp unix:$q | /bin/busybox sed 's/^/@@HOLD vcpus /'
for t in /proc/$vm/task/*; do
  echo "@@HOLD task $(cat $t/comm | /bin/busybox tr ' ' _) $(/bin/busybox grep Cpus_allowed_list $t/status | /bin/busybox tr -d '\t')"
done
echo "@@HOLD stop $(cpumodel qmp --qmp unix:$q stop) $(cpumodel qmp --qmp unix:$q query-status)"
echo "@@HOLD cont $(cpumodel qmp --qmp unix:$q cont) $(cpumodel qmp --qmp unix:$q query-status)"
echo go >&3
wait $vm
rc=$?
/bin/busybox cat $out
exit $rc
