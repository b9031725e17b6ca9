# Sourced in the live guest's branch while the domain runs: xenctx-swift is interrupted
# while it holds the domain paused, and the domain must be running afterwards.
S=/lab/xenctx-swift
# An upstream xenctx killed by the lab's timeout never undid its pause: undo those pauses
# first (each recorded), or the domain stays paused whatever we do.
for i in 1 2 3 4 5 6 7 8; do
  $XL list $id 2>/dev/null | tail -1 | awk '{print $5}' | grep -q p || break
  $XL unpause $id && echo "unpaused $i: a pause left by a killed upstream xenctx" >> $D/swift-sig-leftover-pauses.txt
done
$XL list $id > $D/swift-sig-before.txt 2>&1
for sig in INT TERM HUP; do
  # A background job of a non-interactive shell starts with SIGINT ignored: give it back.
  env --default-signal=INT XENCTX_SWIFT_HOLD_PAUSE_MS=40000 $S --describe -C $id > $D/swift-sig$sig.out 2> $D/swift-sig$sig.err &
  p=$!
  sleep 12
  $XL list $id > $D/swift-sig$sig-during.txt 2>&1
  kill -$sig $p
  wait $p; echo $? > $D/swift-sig$sig.rc
  sleep 2
  $XL list $id > $D/swift-sig$sig-after.txt 2>&1
  ts "signal $sig: $(tail -1 $D/swift-sig$sig-after.txt)"
done
# Pause window of a normal run on the running guest.
run $D swift-live-describe $S --describe -s $MAP -C $id
# Pause windows side by side on the running guest (10 runs each): upstream xenctx keeps the
# domain paused from after it opens libxenctrl to its exit, so its run time (measured here)
# bounds its pause from above; xenctx-swift reports its own window with --describe.
for i in 1 2 3 4 5 6 7 8 9 10; do
  t0=$(date +%s%N)
  /usr/lib/xen-4.17/bin/xenctx -s $MAP -C $id > /dev/null 2>&1
  t1=$(date +%s%N)
  echo "upstream-run-ms $(( (t1 - t0) / 1000000 ))" >> $D/pause-windows.txt
  $S --describe -s $MAP -C $id 2>/dev/null | sed -n 's/.*was paused for \([0-9.]*\) ms.*/swift-pause-ms \1/p' >> $D/pause-windows.txt
  $S --describe -C $id 2>/dev/null | sed -n 's/.*was paused for \([0-9.]*\) ms.*/swift-nomap-pause-ms \1/p' >> $D/pause-windows.txt
done
ts "pause windows: $(tr '\n' ' ' < $D/pause-windows.txt)"
