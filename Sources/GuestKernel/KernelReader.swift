import VCPUContext

/// Why something about the guest kernel could not be read: what was looked for, and why
/// it is not usable. Guest memory is hostile input, so every reader reports here rather
/// than trapping.
public struct KernelDataError: Error, CustomStringConvertible, Equatable, Sendable {
    public let what: String
    public let reason: String
    public init(_ what: String, _ reason: String) {
        self.what = what
        self.reason = reason
    }
    public var description: String { "\(what): \(reason)" }
}

/// Kernel virtual memory as one vCPU's page tables map it, with the bounded reads the
/// kernel readers need (words of the guest's width, C strings, large tables).
public struct KernelReader {
    public let memory: GuestMemory
    /// The guest's word size in bytes (4 or 8): the size of `unsigned long` and pointers.
    public let wordSize: Int

    public init(memory: GuestMemory, wordSize: Int) {
        self.memory = memory
        self.wordSize = wordSize
    }

    /// The kernel's view of a guest: the first online vCPU with translation on (a user
    /// process's tables map the kernel half too).
    public init?(guest: Guest) {
        guard guest.frames != nil else { return nil }
        let candidates = guest.vcpus.filter(\.isOnline) + guest.vcpus.filter { !$0.isOnline }
        guard let vcpu = candidates.first(where: { Translation.of($0.registers, guest: guest.description) != .identity }) ?? candidates.first else { return nil }
        self.init(memory: GuestMemory(guest: guest, vcpu: vcpu), wordSize: guest.description.wordSize)
    }

    public func u8(_ va: UInt64) throws(MemoryFault) -> UInt8 { try memory.byte(va) }
    public func u16(_ va: UInt64) throws(MemoryFault) -> UInt16 { UInt16(try memory.word(va, width: 2)) }
    public func u32(_ va: UInt64) throws(MemoryFault) -> UInt32 { UInt32(try memory.word(va, width: 4)) }
    public func u64(_ va: UInt64) throws(MemoryFault) -> UInt64 { try memory.word(va, width: 8) }
    /// An `unsigned long` or pointer.
    public func word(_ va: UInt64) throws(MemoryFault) -> UInt64 { try memory.word(va, width: wordSize) }

    /// `count` bytes, refused above `limit` so a hostile size cannot allocate without bound.
    public func bytes(_ va: UInt64, count: Int, limit: Int) throws(MemoryFault) -> [UInt8] {
        guard count >= 0, count <= limit else {
            throw MemoryFault(address: va, reason: "read of \(count) bytes refused (the limit here is \(limit))")
        }
        var out = [UInt8]()
        out.reserveCapacity(count)
        var a = va
        while out.count < count {
            let page = try memory.page(containing: a)
            let offset = Int(a & 0xfff)
            let n = min(count - out.count, 4096 - offset)
            out.append(contentsOf: page[offset..<(offset + n)])
            a &+= UInt64(n)
        }
        return out
    }

    /// `count` bytes at `va` where the frame source holds them: when the pages are one run
    /// of memory (a core's pages of a contiguous range, stored in frame order), no copy is
    /// made. Valid while `memory.frames` lives. Nil when a page is unreadable or out of
    /// line, or above `limit` (the caller copies, or reports).
    public func inPlace(_ va: UInt64, count: Int, limit: Int) -> UnsafeRawBufferPointer? {
        guard count > 0, count <= limit, let first = try? memory.page(containing: va), let base = first.baseAddress else { return nil }
        let start = base + Int(va & 0xfff)
        var covered = 4096 - Int(va & 0xfff)
        var a = (va & ~0xfff) &+ 4096
        while covered < count {   // count <= limit: bounded
            guard let page = try? memory.page(containing: a), page.baseAddress == base + Int(a &- (va & ~0xfff)) else { return nil }
            covered += 4096
            a &+= 4096
        }
        return UnsafeRawBufferPointer(start: start, count: count)
    }

    /// A NUL-terminated string of at most `max` bytes (longer: cut there).
    public func cString(_ va: UInt64, max: Int) throws(MemoryFault) -> [UInt8] {
        var out = [UInt8]()
        var a = va
        while out.count < max {
            let page = try memory.page(containing: a)
            let offset = Int(a & 0xfff)
            let chunk = page[offset..<min(4096, offset + (max - out.count))]
            if let nul = chunk.firstIndex(of: 0) {
                out.append(contentsOf: chunk[offset..<nul])
                return out
            }
            out.append(contentsOf: chunk)
            a &+= UInt64(chunk.count)
        }
        return out
    }

    /// Calls `body` with each mapped page of [start, end) (page-aligned), from the top down
    /// when `descending`, until it returns false. Unmapped regions are skipped a whole
    /// table entry at a time, so the cost follows what is mapped, not the window's size;
    /// at most `maxPages` pages are visited (mapped or not).
    public func forEachMappedPage(from start: UInt64, to end: UInt64, descending: Bool, maxPages: Int,
                                  _ body: (UInt64, UnsafeRawBufferPointer) -> Bool) {
        guard start < end else { return }
        var visited = 0
        var va = descending ? (end &- 4096) & ~0xfff : start & ~0xfff
        while va >= start && va < end && visited < maxPages {
            visited += 1
            do {
                let page = try memory.page(containing: va)
                guard body(va, page) else { return }
                if descending { guard va >= 4096 else { return }; va -= 4096 } else { va &+= 4096 }
            } catch {
                let span = max(error.unmappedSpan, 4096)
                if descending {
                    let regionStart = va & ~(span - 1)
                    guard regionStart >= 4096 else { return }
                    va = regionStart - 4096
                } else {
                    let (next, overflow) = (va & ~(span - 1)).addingReportingOverflow(span)
                    if overflow { return }
                    va = next
                }
            }
        }
    }
}
