import GuestKernel
import SafeFile
import Symbols
import VCPUContext
import XenctxReport
#if canImport(Glibc)
import Glibc
#endif

extension FuzzTargets {
    /// Whether a System.map fits the guest and where its kernel was loaded
    /// (`KernelOffset.detect`: VMCOREINFO's symbols against the map's, else `linux_banner` at
    /// the map's address and at 2 MiB steps within ±1 GiB), with a System.map and VMCOREINFO
    /// text from the input, over a small guest made of the input: one or two vCPUs (x86 HVM
    /// in long, protected or real mode as EFER and CR0 say, or ARM as CPSR says; paging off)
    /// over sparse memory. Then the report with that map: `-m` and `-d` (and, by flags, every
    /// vCPU's context), rendered as `renderAll` does.
    ///   [kind: 1 ARM, 2 aarch64 Xen][flags][flags2][lines][bytes per line][stack pages]
    ///   [u64 -m][u64 -d][u64 ip, sp, fp, lr (x86: cs | ss << 16)][u32 CPSR or CR0][u64 EFER]
    ///   [u16 length][System.map][u16 length][VMCOREINFO][memory]
    /// flags: 1 -C, 2 -S, 4 -f, 8 -D, 16 -t, 32 -m, 64 -d, 128 the offset found is given to the
    /// report (else it checks the bare map itself); flags2: 0–7 --unwind, 8 -a, 16 --describe,
    /// 32 two vCPUs, 64 vCPU 1 named, 128 upstream-exact.
    static func kernelOffset(_ data: UnsafeRawBufferPointer) { KernelOffsetCase(data).run() }
}

/// The kerneloffset target's input, decoded (the tests check the seeds through it).
struct KernelOffsetCase {
    let guest: Guest
    let map: SystemMap?
    let vmcoreinfo: VMCoreInfo?
    /// The report's options but its symbols.
    let options: ReportOptions
    /// The offset found is given to the report with the map moved by it (as SymbolResolution
    /// does); else the report checks the bare map itself.
    let givesOffset: Bool

    init(_ data: UnsafeRawBufferPointer) {
        var h = FuzzHeader(data)
        let kind = h.u8(), flags = h.u8(), flags2 = h.u8(), lines = h.u8(), bytesPerLine = h.u8(), pages = h.u8()
        let m = h.u64(), d = h.u64()
        let ip = h.u64(), sp = h.u64(), fp = h.u64(), lr = h.u64()
        let control = h.u32()
        let efer = h.u64()
        map = try? SystemMap(bytes: h.take(Int(h.u16())), path: "fuzz.map")
        vmcoreinfo = try? VMCoreInfo(text: Array(h.take(Int(h.u16()))))
        let memory = FuzzRegions(&h)
        let isARM = kind & 1 != 0
        var files: [RegisterFile] = []
        for i in 0..<(flags2 & 32 != 0 ? 2 : 1) {
            // The second vCPU a page lower on the same stack.
            let sp = sp &- UInt64(i) * 4096
            if isARM {
                var r = FuzzTargets.zeroArm
                r.flags = 1
                r.pc = ip; r.cpsr = UInt64(control)
                r.x[29] = fp; r.x[30] = lr; r.spEL1 = sp; r.spEL0 = sp
                // AArch32 views: r11, SP and LR of USR and SVC.
                r.x[11] = fp & 0xffff_ffff; r.x[13] = sp & 0xffff_ffff; r.x[14] = lr & 0xffff_ffff
                r.x[18] = lr & 0xffff_ffff; r.x[19] = sp & 0xffff_ffff
                files.append(.arm(r))
            } else {
                var r = FuzzTargets.zeroX86_64
                r.flags = VGCF.online | VGCF.inKernel
                r.rip = ip; r.rsp = sp; r.rbp = fp
                r.cs = UInt16(truncatingIfNeeded: lr); r.ss = UInt16(truncatingIfNeeded: lr >> 16)
                r.ctrlreg[0] = UInt64(control) & ~0x8000_0000    // paging off: memory is identity-mapped
                files.append(.x86_64(r))
            }
        }
        // The guest's kind decided as for a core (ARM) or a live HVM domain (EFER and CR0).
        var facts = SourceFacts(machine: isARM ? XenCoreLayout.emARM : XenCoreLayout.emX86_64, isPV: false, contextEntrySize: isARM ? 352 : 5168,
                                xenVersion: "4.17", capabilities: kind & 2 != 0 ? "xen-3.0-aarch64 xen-3.0-armv7l" : "xen-3.0-armv7l")
        if !isARM { (facts.hvmEFER, facts.hvmCR0) = (efer, UInt64(control)) }
        let description = GuestDescription.decide(facts: facts, vcpus: files)
        let vcpus = files.enumerated().map { VCPU(id: $0.offset, idIsCertain: true, registers: $0.element, online: true) }
        guest = Guest(description: description, vcpus: vcpus, frames: memory, warnings: [], facts: [])

        var options = ReportOptions()
        options.allVCPUs = flags & 1 != 0
        options.stackTrace = flags & 2 != 0
        options.framePointers = flags & 4 != 0 && flags & 64 == 0   // the command line refuses -f with -d
        options.decodeAsASCII = flags & 8 != 0
        options.tagStackDump = flags & 16 != 0
        if flags & 32 != 0 { options.memoryAddress = m }
        if flags & 64 != 0 { options.dumpAsStack = d }
        options.unwind = ReportOptions.UnwindMethod.allCases[Int(flags2 & 7) % ReportOptions.UnwindMethod.allCases.count]
        options.allRegisters = flags2 & 8 != 0
        options.describe = flags2 & 16 != 0
        if flags2 & 64 != 0 { options.vcpu = 1 }
        options.upstreamExact = flags2 & 128 != 0
        options.lines = lines == 255 ? ReportOptions.maxLines : Int(lines % 65)
        options.bytesPerLine = 4 + Int(bytesPerLine % 125)       // 4…128, as the command line allows
        options.stackPages = 1 + Int(pages % 4)
        self.options = options
        givesOffset = flags & 128 != 0
    }

    func offset() -> KernelOffset? { map.map { KernelOffset.detect(map: $0, guest: guest, vmcoreinfo: vmcoreinfo) } }

    func report(offset: KernelOffset?) -> Report {
        var options = self.options
        if let map {
            if givesOffset, let offset {
                (options.symbols, options.kernelOffset) = (map.shifted(by: offset.offset), offset)
            } else {
                options.symbols = map
            }
        }
        return Report(guest: guest, options: options)
    }

    func run() {
        let offset = offset()
        _ = offset?.describe
        _ = try? report(offset: offset).renderAll()
    }
}

extension Seeds {
    /// kerneloffset seeds from a real guest: vCPU 0's registers and the bytes -m and -d and the
    /// context view read (its stack page, code bytes, linux_banner), placed at the addresses
    /// the kernel had them (identity-mapped), with the lines of its System.map (the real one
    /// when given, else its kallsyms) that name the image's bounds, linux_banner, the unwind
    /// tables, VMCOREINFO's symbols and each text address on the stack. Three seeds: with
    /// VMCOREINFO; without it, every vCPU (the banner search); and moved 16 MiB up with the
    /// offset given to the report (KASLR).
    static func kernelOffsetSeeds(guest: Guest, kernel: GuestKernel, reader: KernelReader, maps: [String]) -> [(String, [UInt8])] {
        guard case .success(let located) = kernel.vmcoreinfo, case .success(let own) = kernel.symbols(),
              let vcpu = guest.vcpus.first, let raw = try? reader.cString(located.address, max: VMCoreInfo.maxBytes) else { return [] }
        let info = located.info
        let memory = GuestMemory(guest: guest, vcpu: vcpu)
        let choice = StackPointerChoice.choose(vcpu.registers, guest: guest.description)
        guard let sp = choice.fallback ?? choice.address else { return [] }
        // The real System.map of this kernel, when given, else one made of its kallsyms.
        var mapLines: [String: String] = [:]
        let mapPath = maps.first { base($0) == "\(info.osRelease).System.map" }
        var table = own.map
        if let mapPath, let (fd, size) = try? SafeFile.open(mapPath, what: "a System.map", maxSize: 256 << 20),
           let bytes = try? SafeFile.readAll(fd: fd, size: size, path: mapPath) {
            close(fd)
            if let map = try? SystemMap(bytes: bytes, path: mapPath) { table = map }
            for line in bytes.split(separator: 0x0a) {
                let fields = line.split(separator: 0x20)
                guard fields.count == 3 else { continue }
                let name = String(decoding: fields[2], as: UTF8.self)
                if mapLines[name] == nil { mapLines[name] = String(decoding: line, as: UTF8.self) }
            }
        }
        let w = guest.description.wordSize
        var names: Set<String> = ["_stext", "_etext", "_text", "_end", "_sinittext", "_einittext", "linux_banner", "__start_orc_unwind_ip",
                                  "__stop_orc_unwind_ip", "__start_orc_unwind", "__start_unwind_idx", "__stop_unwind_idx"]
        names.formUnion(info.symbols.keys)
        var m = FuzzRegions.Builder()
        func grab(_ va: UInt64, _ n: Int) { if let b = try? memory.read(va, count: n) { m.put(va, b) } }
        // The stack page from SP, and every text address on it named.
        let stackEnd = (sp | 0xfff) &+ 1
        grab(sp, Int(stackEnd - sp))
        var a = sp
        while a < stackEnd, let v = try? memory.word(a, width: w) {
            if v >= table.stext, v < table.etext, let s = table.lookup(v) { names.insert(s.symbol.name) }
            a += UInt64(w)
        }
        let ip = vcpu.registers.instructionPointer
        var registers = [ip]
        if case .arm(let r) = vcpu.registers { registers += r.isAArch32State ? [UInt64(r.lrSVC), UInt64(r.lrUSR)] : [r.x[30]] }
        for v in registers { if let s = table.lookup(v) { names.insert(s.symbol.name) } }
        grab(ip &- 21, 32)
        let banner = table.address(of: "linux_banner")
        if let banner { grab(banner, 64) }
        let addresses = table.addresses(of: names)
        let map = names.sorted().compactMap { n in mapLines[n] ?? addresses[n].map { "\(hex($0, width: w * 2)) T \(n)" } }.joined(separator: "\n") + "\n"
        let infoLines = raw.split(separator: 0x0a).filter { l in
            ["OSRELEASE=", "PAGESIZE=", "BUILD-ID=", "KERNELOFFSET=", "SYMBOL("].contains { l.starts(with: Array($0.utf8)) }
        }
        let infoText = Array(infoLines.joined(separator: [0x0a])) + [0x0a]

        // Registers as the target takes them.
        var kind: UInt8 = 0, control: UInt32 = 0, efer: UInt64 = 0, fp: UInt64 = 0, lr: UInt64 = 0
        switch vcpu.registers {
        case .x86_64(let r):
            // As an HVM kernel has them (a PV kernel runs in ring 3: cs e033).
            (control, efer, fp, lr) = (0x8005_0033, w == 8 ? 0x500 : 0, r.rbp, w == 8 ? 0x18_0010 : 0x68_0060)
        case .x86_32(let r):
            (control, fp, lr) = (0x8005_0033, UInt64(r.ebp), 0x68_0060)
        case .arm(let r):
            kind = guest.description.architecture == .aarch64 ? 3 : 1
            control = UInt32(truncatingIfNeeded: r.cpsr)
            (fp, lr) = r.isAArch32State ? (UInt64(r.r(11)), UInt64(r.lrSVC)) : (r.x[29], r.x[30])
        }
        func input(flags: UInt8, info: [UInt8], shift: UInt64) -> [UInt8] {
            var out: [UInt8] = [kind, flags, 5, 5, 28, 0]               // --unwind auto, -l 5, -b 32, -n 1
            for v in [(banner ?? sp) &+ shift, sp &+ shift, ip &+ shift, sp &+ shift, fp &+ shift, lr &+ (kind & 1 != 0 ? shift : 0)] { out.le(v, 8) }
            out.le(UInt64(control), 4); out.le(efer, 8)
            out.le(UInt64(map.utf8.count), 2); out += Array(map.utf8)
            out.le(UInt64(info.count), 2); out += info
            guard shift != 0 else { return out + m.encoded }
            // Moved up, and so is every kernel or stack address the stack holds.
            var moved = FuzzRegions.Builder()
            for (k, v) in m.bytes { moved.bytes[k &+ shift] = v }
            var a = sp
            while a < stackEnd, let v = try? memory.word(a, width: w) {
                if (v >= table.stext && v < (table.end ?? table.etext)) || (v >= sp & ~0xfff && v < stackEnd) { moved.put(a &+ shift, word: v &+ shift, w) }
                a += UInt64(w)
            }
            return out + moved.encoded
        }
        let kaslr: UInt64 = 16 << 20
        return [("\(base(mapPath ?? "kallsyms"))-m-d", input(flags: 32 | 64, info: infoText, shift: 0)),
                ("\(base(mapPath ?? "kallsyms"))-banner-all", input(flags: 1 | 2 | 32, info: [], shift: 0)),
                ("\(base(mapPath ?? "kallsyms"))-kaslr", input(flags: 2 | 32 | 64 | 128, info: [], shift: kaslr))]
    }
}
