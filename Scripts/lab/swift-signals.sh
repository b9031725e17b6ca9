# Sourced in the live guest's branch while the domain runs: xenctx-swift is interrupted
# while it holds the domain paused, and the domain must be running afterwards.
S=/lab/xenctx-swift
for sig in INT TERM HUP; do
  XENCTX_SWIFT_HOLD_PAUSE_MS=40000 $S --describe -C $id > $D/swift-sig$sig.out 2> $D/swift-sig$sig.err &
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
