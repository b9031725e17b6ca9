# Sourced by the ARM lab's scenario.sh inside the trixie dom0 (busybox sh) by
# Scripts/lab-live-arm.sh: xenctx-swift's live path beside upstream xenctx (Xen 4.20).
# $OUT, $IN, log() and now() come from scenario.sh. Each run writes
# $OUT/TAG.swift/NAME.{cmd,out,err,rc,ms} (ms: wall time from /proc/uptime, 10 ms steps).
# /usr/bin/fullcore (the complete-core writer), when lab-live-arm.sh put it in, writes the
# same moment's core beside --save-core's, for a byte comparison.
S=${XENCTX_SWIFT:-/usr/bin/xenctx-swift}
UPSTREAM=/usr/lib/xen-4.20/bin/xenctx
GENV=/usr/lib/xenctx-lab/env          # GNU env (trixie coreutils): --default-signal
up_cs() { awk '{printf "%d", $1 * 100}' /proc/uptime; }
srun() { # DIR NAME CMD...: run with a 900 s limit, record everything
    _d=$1 _n=$2; shift 2
    echo "$*" > $_d/$_n.cmd
    _t0=$(up_cs)
    timeout 900 "$@" > $_d/$_n.out 2> $_d/$_n.err
    _rc=$?
    _t1=$(up_cs)
    echo $_rc > $_d/$_n.rc
    echo "$(( (_t1 - _t0) * 10 ))" > $_d/$_n.ms
    return $_rc
}

# swift_inspect TAG DOMID MAP KSTART: the domain is paused by `xl pause` and upstream
# xenctx has just run (run_xenctx) on it.
swift_inspect() {
    _tag=$1 _id=$2 _map=$3 _k=$4
    D=$OUT/$_tag.swift; mkdir -p $D
    xl list $_id > $D/state-before.txt 2>&1
    # every upstream option set, with upstream's method (--unwind scan) and the map's
    # addresses as they are (--kaslr 0 with -s), as the corpus's upstream-equality test runs them
    srun $D xenctx            $S --unwind scan $_id
    srun $D xenctx-vcpu1      $S --unwind scan $_id 1
    srun $D xenctx-C          $S --unwind scan -C $_id
    srun $D xenctx-s-C        $S --unwind scan --kaslr 0 -s $_map -C $_id
    srun $D xenctx-s-S-f-a-C  $S --unwind scan --kaslr 0 -s $_map -S -f -a -C $_id
    srun $D xenctx-s-k-a-C    $S --unwind scan --kaslr 0 -s $_map -k $_k -a -C $_id
    srun $D xenctx-k-C        $S --unwind scan -k $_k -C $_id
    # xenctx-swift's own views
    srun $D own-C        $S -C $_id
    srun $D own-summary  $S --summary $_id
    srun $D own-tasks    $S --tasks $_id
    srun $D own-log      $S --log $_id
    srun $D own-s-C      $S -s $_map -C $_id
    srun $D describe     $S --describe -s $_map -C $_id
    # ARM32 (armmp: no BTF): tasks with the types from the -dbg vmlinux's DWARF (libdw)
    case $_tag in a32*) [ -r $IN/vmlinux-armhf ] && srun $D own-tasks-vmlinux $S --vmlinux $IN/vmlinux-armhf --tasks $_id;; esac
    log "$_tag: xenctx-swift views done (own -C rc=$(cat $D/own-C.rc), $(cat $D/own-C.ms) ms)"
    # a complete core of the same moment (nested pause: xl's pause holds), read back in dom0
    rm -f $OUT/$_tag.swift.core
    srun $D save-core       $S --save-core $OUT/$_tag.swift.core $_id
    log "$_tag: --save-core rc=$(cat $D/save-core.rc) in $(cat $D/save-core.ms) ms, size=$(ls -l $OUT/$_tag.swift.core 2>/dev/null | awk '{print $5}')"
    srun $D save-core-again $S --save-core $OUT/$_tag.swift.core $_id     # must refuse: exists
    # the complete-core writer's core of the same paused moment (lab-live-arm.sh builds it for
    # Xen 4.20): ours must equal it byte for byte; only the first differences are kept
    if [ -x /usr/bin/fullcore ]; then
        srun $D fullcore /usr/bin/fullcore $_id $OUT/$_tag.fullcore
        cmp -s $OUT/$_tag.swift.core $OUT/$_tag.fullcore; echo $? > $D/fullcore-cmp.rc
        cmp -l $OUT/$_tag.swift.core $OUT/$_tag.fullcore 2>&1 | head -200 > $D/fullcore-cmp.txt
        ls -l $OUT/$_tag.swift.core $OUT/$_tag.fullcore > $D/fullcore-sizes.txt 2>&1
        rm -f $OUT/$_tag.fullcore
        log "$_tag: complete-core writer rc=$(cat $D/fullcore.rc), cmp rc=$(cat $D/fullcore-cmp.rc)"
    fi
    srun $D core-C          $S --core $OUT/$_tag.swift.core -C
    srun $D core-summary    $S --core $OUT/$_tag.swift.core --summary
    srun $D core-tasks      $S --core $OUT/$_tag.swift.core --tasks
    srun $D core-log        $S --core $OUT/$_tag.swift.core --log
    srun $D core-s-C        $S --core $OUT/$_tag.swift.core -s $_map -C
    case $_tag in a32*) [ -r $IN/vmlinux-armhf ] && srun $D core-tasks-vmlinux $S --core $OUT/$_tag.swift.core --vmlinux $IN/vmlinux-armhf --tasks;; esac
    xl list $_id > $D/state-after.txt 2>&1
    log "$_tag: read back (core -C rc=$(cat $D/core-C.rc)); second --save-core rc=$(cat $D/save-core-again.rc)"
}

# swift_live TAG DOMID MAP: the guest runs (alive or busy): signals while xenctx-swift
# holds the pause, then pause windows beside upstream's.
swift_live() {
    _tag=$1 _id=$2 _map=$3
    D=$OUT/$_tag.swift; mkdir -p $D
    for _i in 1 2 3 4 5 6 7 8; do
        xl list $_id 2>/dev/null | tail -1 | awk '{print $5}' | grep -q p || break
        xl unpause $_id && echo "unpaused $_i" >> $D/sig-leftover-pauses.txt
    done
    sleep 3
    xl list $_id > $D/sig-before.txt 2>&1
    for sig in INT TERM HUP; do
        # a background job of a non-interactive shell starts with SIGINT ignored: give it back
        $GENV --default-signal=INT XENCTX_SWIFT_HOLD_PAUSE_MS=40000 $S --describe -C $_id > $D/sig$sig.out 2> $D/sig$sig.err &
        _p=$!
        sleep 12
        xl list $_id > $D/sig$sig-during.txt 2>&1
        kill -$sig $_p
        wait $_p; echo $? > $D/sig$sig.rc
        sleep 2
        xl list $_id > $D/sig$sig-after.txt 2>&1
        log "$_tag: signal $sig: rc=$(cat $D/sig$sig.rc) during: $(tail -1 $D/sig$sig-during.txt | awk '{print $5}') after: $(tail -1 $D/sig$sig-after.txt | awk '{print $5}')"
    done
    srun $D live-describe $S --describe -s $_map -C $_id
    srun $D live-summary  $S --summary $_id
    rm -f $D/pause-windows.txt
    for _i in 1 2 3 4 5 6 7 8 9 10; do
        _t0=$(up_cs)
        $UPSTREAM -s $_map -C $_id > /dev/null 2>&1
        _t1=$(up_cs)
        echo "upstream-run-ms $(( (_t1 - _t0) * 10 ))" >> $D/pause-windows.txt
        $S --describe -s $_map -C $_id 2>/dev/null | sed -n 's/.*was paused for \([0-9.]*\) ms.*/swift-pause-ms \1/p' >> $D/pause-windows.txt
        _t0=$(up_cs)
        $S --describe -C $_id 2>/dev/null | sed -n 's/.*was paused for \([0-9.]*\) ms.*/swift-nomap-pause-ms \1/p' >> $D/pause-windows.txt
        _t1=$(up_cs)
        echo "swift-nomap-run-ms $(( (_t1 - _t0) * 10 ))" >> $D/pause-windows.txt
    done
    xl list $_id > $D/live-after.txt 2>&1
    log "$_tag: pause windows: $(tr '\n' ' ' < $D/pause-windows.txt)"
}

# swift_nolibs: hide Xen's control library; the live path must say so, --core must still work.
swift_nolibs() {
    H=$OUT/host.swift; mkdir -p $H
    mkdir -p /tmp/hidden-libs
    mv /usr/lib/aarch64-linux-gnu/libxenctrl.so* /tmp/hidden-libs/
    ls /usr/lib/aarch64-linux-gnu/ | grep -c xenctrl > $H/nolibs-left.txt
    _core=$(ls $OUT/*.swift.core 2>/dev/null | head -1)
    echo "$_core" > $H/nolibs-core-name.txt
    srun $H nolibs-core $S -C --core $_core
    srun $H nolibs-live $S 1
    mv /tmp/hidden-libs/* /usr/lib/aarch64-linux-gnu/
    log "no libs: live rc=$(cat $H/nolibs-live.rc), core rc=$(cat $H/nolibs-core.rc)"
}
