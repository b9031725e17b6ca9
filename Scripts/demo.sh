#!/usr/bin/env bash
# Runs xenctx-swift on a bundled real core with no symbol file: a 32-bit ARM guest on arm64
# Xen 4.17 that oopsed in PID 1 while booting (corpus/cases/arm-full-a32-crash-smp-bootoops1).
# Everything named comes from the guest's own memory: kallsyms (found by content: the kernel
# died before writing VMCOREINFO), its EHABI unwind tables, and its kernel log.
# Then the tasks of an x86_64 PV guest running Debian 13's kernel (6.12) that crashed with a
# task asleep in a module (corpus/cases/x86-run10-pv612-crash-tasks): every task, the modules,
# and that task's stack, again from nothing but the core (kallsyms, BTF, the module list and
# its symbols, the kernel's ORC tables in their 6.4+ format).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
cache=${XENCTX_CORPUS_CACHE:-.build/corpus-cache}
case=arm-full-a32-crash-smp-bootoops1
mkdir -p "$cache/$case"
core="$cache/$case/a32-crash-smp-bootoops1.core"
[ -f "$core" ] || xz -dc "corpus/cases/$case/a32-crash-smp-bootoops1.core.xz" > "$core"
swift build -c release --product xenctx-swift >&2
"$(swift build -c release --show-bin-path)/xenctx-swift" --describe -C -l 0 --log --core "$core" "$@"
bin="$(swift build -c release --show-bin-path)/xenctx-swift"
tasks=x86-run10-pv612-crash-tasks
mkdir -p "$cache/$tasks"
core2="$cache/$tasks/lab-crash.core"
[ -f "$core2" ] || xz -dc "corpus/cases/$tasks/lab-crash.core.xz" > "$core2"
echo; echo "== $tasks (Linux 6.12): --tasks --modules, then --task 145 (cat /dev/rfkill, asleep in the rfkill module)"
"$bin" --tasks --modules --core "$core2"
echo
"$bin" --task 145 --core "$core2"
# Then why a guest hung and died (corpus/cases/x86-run17-why-mutex-lockup, Linux 6.1): the
# verdict in the kernel's words with the guest's own clock, a lockup the kernel never reported
# (a task spinning on vCPU 1 for 55 s, from the scheduler's clocks), and the tasks in D state
# with the lock each waits on, its owner and queue: rw_semaphores in a chain (touch → rm →
# test_lockup's insmod) and a mutex (cgroup_mutex, held by a sleeping insmod).
why=x86-run17-why-mutex-lockup
mkdir -p "$cache/$why"
core3="$cache/$why/lab-why.core"
[ -f "$core3" ] || xz -dc "corpus/cases/$why/lab-why.core.xz" > "$core3"
echo; echo "== $why (Linux 6.1): --summary, then --hung"
"$bin" --summary --core "$core3"
echo
"$bin" --hung --core "$core3"
