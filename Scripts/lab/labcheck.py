"""What Scripts/lab/compare.py (x86) and compare-arm.py (ARM) share: the PASS/FAIL lines and
their closing count, and a System.map's image bounds."""
import sys

class Checks:
    """One PASS/FAIL line per check; `finish` prints 'N passed, M failed' and exits 1 on any failure."""
    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, ok, what, detail=""):
        if ok: self.passed += 1
        else: self.failed += 1
        print(("PASS " if ok else "FAIL ") + what + (("\n     " + detail) if detail and not ok else ""))

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        sys.exit(1 if self.failed else 0)

def image_bounds(mapfile):
    """_text and _end (or __bss_stop) of a System.map: the kernel image upstream's names may lie in."""
    text = end = None
    for line in open(mapfile):
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "_text": text = int(parts[0], 16)
        if len(parts) >= 3 and parts[2] in ("_end", "__bss_stop"): end = int(parts[0], 16)
    return text, end
