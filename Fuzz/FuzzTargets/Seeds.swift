import GuestKernel
import SafeFile
import Symbols
import VCPUContext
import XenctxReport
#if canImport(Glibc)
import Glibc
#endif

/// Seed inputs for each target, cut from real cases (the corpus's cores and maps): small
/// slices of what each parser meets in life, so the fuzzer starts deep in the formats.
public enum Seeds {
    /// Records the frames a report reads, to cut a small core holding just those pages.
    final class RecordingFrames: FrameSource, @unchecked Sendable {
        let inner: any FrameSource
        var read: [UInt64] = []
        init(_ inner: any FrameSource) { self.inner = inner }
        func page(_ frame: UInt64) -> UnsafeRawBufferPointer? {
            if !read.contains(frame) && read.count < 256 { read.append(frame) }
            return inner.page(frame)
        }
        func whyMissing(_ frame: UInt64) -> String { inner.whyMissing(frame) }
    }

    /// Writes seeds for every target under `directory/TARGET/` from the given real cores and
    /// System.maps; returns how many were written.
    @discardableResult
    public static func make(cores: [String], maps: [String], into directory: String) throws -> Int {
        var written = 0
        func save(_ target: String, _ name: String, _ bytes: [UInt8]) {
            let dir = "\(directory)/\(target)"
            mkdir(directory, 0o755); mkdir(dir, 0o755)
            guard let f = fopen("\(dir)/\(name)", "wb") else { return }
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
            fclose(f)
            written += 1
        }
        for path in maps {
            let (fd, size) = try SafeFile.open(path, what: "a System.map", maxSize: 256 << 20)
            defer { close(fd) }
            let head = try SafeFile.readAll(fd: fd, size: size, path: path).prefix(24_000)
            save("systemmap", "\(base(path)).head", Array(head))
        }
        save("tasks", "ring", taskRing())
        save("layouts", "arm32-synthetic", layouts32(.arm32))
        save("layouts", "x86_32-synthetic", layouts32(.x86_32))
        var names: Set<String> = []
        for path in cores {
            let core = try XenCore(path: path)
            let guest = try Guest(core: core)
            // Cores of several cases share a file name (lab-crash.core): the case's tells them apart.
            var name = base(path)
            if !names.insert(name).inserted { name = "\(base(String(path.dropLast(name.count + 1))))-\(name)" }
            guard let frames = guest.frames as? CoreFrames else { continue }

            // core: the pages one report reads (contexts, page tables, stacks), in a small core.
            let recording = RecordingFrames(frames)
            let small = Guest(description: guest.description, vcpus: guest.vcpus, frames: recording, warnings: [], facts: [])
            var options = ReportOptions()
            options.allVCPUs = true
            options.stackTrace = true
            _ = try? Report(guest: small, options: options).renderAll()
            let slots = frames.slots()
            let kept = slots.indices.filter { recording.read.contains(slots[$0].frame) }
            let writer = DumpCoreWriter(machine: core.machine, magic: core.isPV ? XenCoreLayout.magicPV : XenCoreLayout.magicHVM,
                                        entrySize: core.contextEntrySize,
                                        contexts: (0..<core.vcpuEntryCount).map { Array(core.contextBytes(entry: $0)!.bytes) },
                                        frames: kept.map { (pfn: slots[$0].pfn, gmfn: slots[$0].frame) })
            let out = "\(directory)/core-\(name).tmp"
            try writer.write(to: out) { i in Array(frames.page(slot: kept[i])) }
            let (fd, size) = try SafeFile.open(out, what: "a core", maxSize: 64 << 20)
            let bytes = try SafeFile.readAll(fd: fd, size: size, path: out)
            close(fd)
            save("core", name, bytes)
            save("report", name, bytes)
            save("elf", name, Array(bytes.prefix(8192)))
            unlink(out)

            guard let kernel = GuestKernel(guest: guest), let reader = KernelReader(guest: guest) else { continue }
            // vmcoreinfo: the kernel's own text.
            if case .success(let located) = kernel.vmcoreinfo,
               let text = try? reader.cString(located.address, max: VMCoreInfo.maxBytes) {
                save("vmcoreinfo", name, text)
            }
            // kallsyms: the real token table and index with the first 300 symbols' names and offsets.
            if case .success(let own) = kernel.symbols(), let t = own.tables.offsets.map({ _ in own.tables }),
               let slice = kallsymsSlice(t, reader: reader) {
                save("kallsyms", name, slice)
            }
            // locators (ARM32's lowmem): kallsyms' tables for the first 300 symbols laid out as
            // 6.1 lays them out, markers right below the token table, then the real VMCOREINFO
            // text, so the searches by content start from what they look for.
            if guest.description.architecture == .arm32, case .success(let located) = kernel.vmcoreinfo,
               let text = try? reader.cString(located.address, max: 4000),
               case .success(let own) = kernel.symbols(), let slice = kallsymsImage(own.tables, reader: reader) {
                // The text above the tables, as .bss is above .rodata (an upward search starts at them).
                let padded = slice + [UInt8](repeating: 0, count: (4096 - slice.count % 4096) % 4096)
                save("locators", name, padded + text + [0])
            }
            // printk: the first records of the real log, in a ring of 16 descriptors.
            if case .success(let log) = kernel.log(symbols: try? kernel.symbols().get().map) {
                save("printk", name, printkSlice(log, wordSize: reader.wordSize))
                // printkring: the same log's boot-time ring found by its shape, and its log_buf of 5.4.
                save("printkring", "\(name)-static", staticRingSeed(log))
                if case .success(let located) = kernel.vmcoreinfo {
                    save("printkring", "\(name)-logbuf", legacyLogSeed(log, osRelease: located.info.osRelease))
                    save("printkring", "\(name)-logbuf-wrapped", legacyLogSeed(log, osRelease: located.info.osRelease, wrapped: true))
                }
            }
            // printkring: the ring's VMCOREINFO lines and its last records where the kernel keeps them.
            if let seed = printkRingSeed(kernel: kernel, reader: reader) { save("printkring", name, seed) }
            // layouts: the kernel's BTF cut to the task and module structs, and what the reads take.
            if let seed = layoutsSeeds(guest: guest, kernel: kernel, reader: reader) { save("layouts", name, seed) }
            // kerneloffset: the System.map's lines and the pages -m, -d and the context read.
            for (seedName, seed) in kernelOffsetSeeds(guest: guest, kernel: kernel, reader: reader, maps: maps) { save("kerneloffset", "\(name)-\(seedName)", seed) }
            // btf: the kernel's BTF header and its first types and strings, cut to 16 KiB and
            // re-pointed so the sections fit (a real layout, a slice of its contents).
            if let bounds = own(kernel)?.map.addresses(of: ["__start_BTF"]), let start = bounds["__start_BTF"],
               var slice = try? reader.bytes(start, count: 16384, limit: 16384) {
                let half = 8192 - 24
                for (o, v) in [(8, 0), (12, half), (16, half), (20, half)] { for i in 0..<4 { slice[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
                save("btf", name, slice)
            }
            // pagetables and unwind: the real root table, and the real stack page of vCPU 0.
            if let vcpu = guest.vcpus.first {
                let translation = Translation.of(vcpu.registers, guest: guest.description)
                let choice = StackPointerChoice.choose(vcpu.registers, guest: guest.description)
                let memory = GuestMemory(guest: guest, vcpu: vcpu)
                var header: [UInt8] = []
                func le(_ v: UInt64, _ n: Int) { for i in 0..<n { header.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
                var root: UInt64 = 0, kind: UInt8 = 6, control: UInt64 = 0
                switch translation {
                case .x86LongMode(let r): (kind, root) = (0, r)
                case .aarch64: (kind, root, control) = (5, 0, { if case .arm(let a) = vcpu.registers { return a.ttbcr } else { return 0 } }())
                case .armLPAE: (kind, root, control) = (4, 0, { if case .arm(let a) = vcpu.registers { return a.ttbcr } else { return 0 } }())
                default: break
                }
                header.append(kind); le(control, 8); le(0, 8); le(0, 8)
                let sp = choice.fallback ?? choice.address ?? 0
                for _ in 0..<8 { le(sp, 8) }
                if let rootPage = frames.page(root >> 12) { save("pagetables", name, header + Array(rootPage)) }
                if let stack = try? memory.page(containing: sp) {
                    var u: [UInt8] = [UInt8(guest.description.architecture == .aarch64 ? 2 : 3)]
                    for v in [UInt32(0), 0, UInt32(sp & 0xfff), UInt32(sp & 0xfff), 2, 0] { for i in 0..<4 { u.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
                    save("unwind", name, u + Array(stack))
                }
            }
        }
        return written
    }

    static func own(_ kernel: GuestKernel) -> GuestKernel.Symbols? { try? kernel.symbols().get() }

    static func base(_ path: String) -> String { String(path.split(separator: "/").last ?? "seed") }

    /// [flags][six u32 offsets from the base] then memory: num_syms, names, token table,
    /// token index, offsets, relative base, as FuzzTargets.kallsyms reads them.
    static func kallsymsSlice(_ t: Kallsyms.Tables, reader: KernelReader) -> [UInt8]? {
        let count = 300
        guard let index = try? reader.bytes(t.tokenIndex, count: 512, limit: 512),
              let tokens = try? reader.bytes(t.tokenTable, count: Int(truncatingIfNeeded: t.tokenIndex &- t.tokenTable), limit: 8192),
              let names = try? reader.bytes(t.names, count: 16384, limit: 16384),
              let offsetsAt = t.offsets, let offsets = try? reader.bytes(offsetsAt, count: count * 4, limit: 4096),
              let baseAt = t.relativeBase, let base = try? reader.word(baseAt) else { return nil }
        // Names of the first `count` symbols only.
        var p = 0
        for _ in 0..<count where p < names.count { var l = Int(names[p]); p += 1; if l & 0x80 != 0 { l = (l & 0x7f) | Int(names[p]) << 7; p += 1 }; p += l }
        var memory: [UInt8] = []
        func le(_ v: UInt64, _ n: Int) { for i in 0..<n { memory.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        le(UInt64(count), 8)                                   // num_syms at 0
        le(base, 8)                                            // relative base at 8
        let offsetsOffset = memory.count; memory += offsets
        let namesOffset = memory.count; memory += names.prefix(p)
        while memory.count % 8 != 0 { memory.append(0) }
        let tokensOffset = memory.count; memory += tokens
        let indexOffset = memory.count; memory += index
        var header: [UInt8] = [reader.wordSize == 8 ? 0 : 1]
        for v in [0, namesOffset, tokensOffset, indexOffset, offsetsOffset, 8] { for i in 0..<4 { header.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        return header + memory
    }

    /// kallsyms_offsets, relative_base, num_syms, names, markers, token_table, token_index
    /// for the first 300 symbols (two markers: symbols 0 and 256), 4-byte words.
    static func kallsymsImage(_ t: Kallsyms.Tables, reader: KernelReader) -> [UInt8]? {
        let count = 300
        guard reader.wordSize == 4, let offsetsAt = t.offsets, let baseAt = t.relativeBase,
              let index = try? reader.bytes(t.tokenIndex, count: 512, limit: 512),
              let tokens = try? reader.bytes(t.tokenTable, count: Int(truncatingIfNeeded: t.tokenIndex &- t.tokenTable), limit: 8192),
              let names = try? reader.bytes(t.names, count: 16384, limit: 16384),
              let offsets = try? reader.bytes(offsetsAt, count: count * 4, limit: 4096),
              let base = try? reader.u32(baseAt) else { return nil }
        var p = 0, marker256 = 0
        for i in 0..<count where p < names.count {
            if i == 256 { marker256 = p }
            var l = Int(names[p]); p += 1
            if l & 0x80 != 0 { l = (l & 0x7f) | Int(names[p]) << 7; p += 1 }
            p += l
        }
        var m: [UInt8] = []
        func le(_ v: UInt64, _ n: Int) { for i in 0..<n { m.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        m += offsets
        le(UInt64(base), 4)
        le(UInt64(count), 4)
        m += names.prefix(p)
        while m.count % 4 != 0 { m.append(0) }
        le(0, 4); le(UInt64(marker256), 4)
        m += tokens
        while m.count % 2 != 0 { m.append(0) }
        m += index
        // What follows the index in an image: the search reads the tokens a page beyond.
        return m + [UInt8](repeating: 0, count: 8192)
    }

    /// [flags] then a ring at the base in the 5.10–6.x layout holding the first records.
    static func printkSlice(_ log: KernelLog, wordSize w: Int) -> [UInt8] {
        let start: UInt64 = w == 8 ? 0xffff_ffff_8200_0000 : 0xc200_0000
        var m = [UInt8](repeating: 0, count: 4 * 4096)
        func put(_ at: Int, _ v: UInt64, _ n: Int) { for i in 0..<n { m[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        let descs = 4096, infos = 2 * 4096, data = 3 * 4096
        put(0, 4, 4); put(w, start + UInt64(descs), w); put(2 * w, start + UInt64(infos), w)
        let records = Array(log.records.prefix(16))
        put(3 * w, UInt64(records.count), w); put(4 * w, 1, w)
        put(6 * w, 12, 4); put(7 * w, start + UInt64(data), w)
        var lpos = 0
        for (i, r) in records.enumerated() {
            let id = UInt64(i + 1), slot = Int(id & 15)
            let text = Array(r.text.prefix(200))
            let size = (w + text.count + w - 1) & ~(w - 1)
            guard lpos + size <= 4096 else { break }
            put(descs + slot * 3 * w, id | 2 << UInt64(w * 8 - 2), w)
            put(descs + slot * 3 * w + w, UInt64(lpos), w); put(descs + slot * 3 * w + 2 * w, UInt64(lpos + size), w)
            put(data + lpos, id, w)
            for (j, b) in text.enumerated() { m[data + lpos + w + j] = b }
            put(infos + slot * 88, r.sequence ?? id, 8); put(infos + slot * 88 + 8, r.timestamp, 8); put(infos + slot * 88 + 16, UInt64(text.count), 2)
            lpos += size
        }
        return [w == 8 ? 0 : 1] + m
    }
}

