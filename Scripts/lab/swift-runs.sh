# Sourced by the lab's scenario.sh inside dom0, for each domain, after upstream xenctx ran
# on the paused domain ($D, $id, $name, $MAP, run() come from scenario.sh).
S=/lab/xenctx-swift
# Every upstream command again, with xenctx-swift in place of xenctx: same paused domain.
for cmd in $D/xenctx*.cmd; do
  n=$(basename $cmd .cmd)
  case $n in *after-dump*) continue ;; esac
  set -- $(cat $cmd)
  shift
  # upstream's output exactly (the default is exact traces; and with -s, the map's addresses as
  # they are, as upstream takes them, where ours would shift them for a relocated kernel)
  k=; case " $* " in *" -s "*) k="--kaslr 0" ;; esac
  run $D swift-$n $S --unwind scan $k "$@"
done
run $D swift-describe $S --describe -s $MAP -C $id
# A complete core of the same moment (nested pause: the domain stays paused by xl).
run $D swift-save-core $S --save-core $D/$name.swift.core $id
run $D swift-save-core-again $S --save-core $D/$name.swift.core $id      # must refuse: exists
