# Sourced at the very end of the scenario: hide Xen's libraries and check that
# xenctx-swift still reads cores and says what is missing for a live domain.
S=/lab/xenctx-swift
mkdir -p /tmp/hidden-libs
mv /usr/lib/x86_64-linux-gnu/libxenctrl.so* /tmp/hidden-libs/
# any core xenctx-swift saved in this run, with its own domain's System.map
core=$(ls $OUT/*/*.swift.core 2>/dev/null | head -1)
map=$(dirname "$core")/System.map; [ -r "$map" ] || map=$MAP
run $H swift-nolibs-core $S -s $map -C --core $core
run $H swift-nolibs-live $S 1
mv /tmp/hidden-libs/* /usr/lib/x86_64-linux-gnu/
