import VCPUContext

extension Report {
    /// Reads, through each online vCPU's page tables, every page a report's stack views
    /// start from: from the chosen stack pointer's page (and an ARM exception mode's
    /// fallback to sp_svc) to the top of its kernel stack plus `stackPages - 1` pages, and
    /// the code bytes around an x86 IP. A live guest's frame source keeps what it read,
    /// so this, done while the domain is paused, is the snapshot the report is printed
    /// from after unpausing (page-table pages included, since the walks read them).
    public static func snapshotStacks(of guest: Guest, stackPages: Int) {
        let d = guest.description
        let threadSize = d.architecture.descriptor.kernelStackSize
        let extra = UInt64(max(0, min(stackPages, 65536) - 1)) * 4096
        for v in guest.vcpus where v.isOnline {
            let memory = GuestMemory(guest: guest, vcpu: v)
            let choice = StackPointerChoice.choose(v.registers, guest: d)
            var pointers = [choice.address, choice.fallback].compactMap { $0 }
            if case .x86_64(let r) = v.registers { pointers.append(d.wordSize == 8 ? r.rip &- 21 : (r.rip &- 21) & 0xffff_ffff) }
            for sp in pointers where sp != 0 {
                let top = ((sp & ~(threadSize - 1)) &+ threadSize) &+ extra
                var page = sp & ~4095
                var n = 0
                // Bounded: at most the stack plus -n pages (65536 at most).
                while page < top && n <= 4 + 65536 {
                    _ = try? memory.byte(page)
                    page &+= 4096
                    n += 1
                }
            }
        }
    }
}
