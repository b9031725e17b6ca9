# Sourced (bash) by Scripts/lab-check.sh and Scripts/lab-tasks.sh after they copied the x86 lab to
# $work: patches that copy's build.sh and files/scenario.sh for guests other than 64-bit PV.
# Reads LAB_DOMS (TYPE hvm or hvm32: dom0 gets qemu-system-xen) and KVER32 (a non-PAE 686 kernel
# gets its console on the serial port only). Every sed is checked; on a mismatch it exits 2.
# The 32-bit kernel and initramfs themselves come from Scripts/lab/guest32.sh (lab-check.sh).
gt_fail() { echo "$(basename "$0"): the lab's $1 changed; cannot add: $2" >&2; exit 2; }
# HVM guests (TYPE hvm or hvm32) need Xen's device model, QEMU built for Xen, in dom0.
if [[ " ${LAB_DOMS:-} " == *:hvm* ]]; then
  sed -i 's|,procps,file \\$|,procps,file,qemu-system-xen \\|' "$work/build.sh"
  grep -q 'file,qemu-system-xen' "$work/build.sh" || gt_fail build.sh qemu-system-xen
fi
# Per domain: the xl type, kernel and ramdisk (pvh32 = a pvh domain with the 32-bit kernel),
# and the System.map, -k and addresses upstream's options use (kept beside its outputs).
# HVM guests: no emulated display; the kernel's console on the emulated serial port too (its
# early boot, before the PV console hvc0 is up), written by the device model to a file.
sed -i 's|^  cat > /lab/$name.cfg <<EOT|  xltype=$gtype kern=/lab/vmlinuz rd=/lab/guest-initrd.cpio.gz con=console=hvc0 hvmlines=\n  case $gtype in *32) xltype=${gtype%32}; kern=/lab/vmlinuz32; rd=/lab/guest-initrd32.cpio.gz;; esac\n  case $gtype in hvm*) con="console=ttyS0,115200 console=hvc0"; hvmlines=$(printf '"'"'vga = "none"\\nvnc = 0\\nserial = "file:%s/console/serial-%s.log"'"'"' $OUT $name);; esac\n&|; s|^type = "$gtype"$|type = "$xltype"\n$hvmlines|; s|^kernel = "/lab/vmlinuz"$|kernel = "$kern"|; s|^ramdisk = "/lab/guest-initrd.cpio.gz"$|ramdisk = "$rd"|; s|^cmdline = "console=hvc0 |cmdline = "$con |' "$work/files/scenario.sh"
sed -i 's|^  echo $gtype > $D/type.txt$|&\n  case $gtype in *32) MAP=/lab/System.map32 kstart=0xc1000000;; *) MAP=/lab/System.map kstart=0xffff800000000000;; esac\n  banner=0x$(awk '"'"'$3=="linux_banner"{print $1}'"'"' $MAP); inittask=0x$(awk '"'"'$3=="init_task"{print $1}'"'"' $MAP)\n  cp $MAP $D/System.map|' "$work/files/scenario.sh"
for want in 'type = "$xltype"' '$hvmlines' 'cmdline = "$con ' 'kernel = "$kern"' 'ramdisk = "$rd"' 'cp $MAP $D/System.map' 'kern=/lab/vmlinuz32'; do
  grep -qF "$want" "$work/files/scenario.sh" || gt_fail scenario.sh "$want"
done
# The 686 (non-PAE) kernel (KVER32=6.1.0-50-686) has no Xen support at all (Linux's Xen code
# needs PAE): as an HVM guest it is a plain PC kernel whose only console is the serial port.
case ${KVER32:-6.1.0-50-686-pae} in *-pae) ;; *)
  sed -i 's|^  case $gtype in hvm\*) con=.*|&\n  case $gtype in hvm32) con="console=ttyS0,115200";; esac|' "$work/files/scenario.sh"
  grep -q 'hvm32) con="console=ttyS0,115200"' "$work/files/scenario.sh" || gt_fail scenario.sh "the 686 kernel's console" ;;
esac
# A guest kernel that panics without telling Xen (686; 64-bit HVM guests go on to their emergency
# restart) never shows state c: its serial console says it, and the crash wait counts that too.
sed -i 's|^  \[ "${n:-0}" -ge "${want:-0}" \] 2>/dev/null \&\& break$|  p=$(for c in $crashnames; do grep -qs "end Kernel panic" $OUT/console/serial-$c.log \&\& echo $c; done \| wc -l); [ "$p" -gt "${n:-0}" ] \&\& n=$p\n&|' "$work/files/scenario.sh"
grep -q 'end Kernel panic' "$work/files/scenario.sh" || gt_fail scenario.sh "the console crash check"
