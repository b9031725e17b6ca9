import Symbols
import VCPUContext

/// Register blocks in upstream xenctx's exact layouts (`print_ctx_*` in xenctx.c).
struct RegisterText {
    let classifier: KernelAddressClassifier
    let allRegisters: Bool
    var hasSymbols: Bool { classifier.symbols != nil }

    /// The block upstream prints for this register file (a 32-bit guest's x86_64 context, an
    /// HVM guest's, in its 32-bit shape).
    func block(_ registers: RegisterFile, architecture: GuestArchitecture) -> String {
        switch registers {
        case .x86_64(let r): return architecture.descriptor.wordSize == 8 ? x86_64(r) : x86_32on64(r)
        case .x86_32(let r): return x86_32(r)
        case .arm(let r): return arm(r)
        }
    }

    func sym(_ addr: UInt64, _ kind: KernelAddressClassifier.Kind = .text) -> String {
        classifier.symbolSuffix(addr, kind: kind)
    }

    static let flagNames: [(clear: String?, set: String?)] = [
        (nil, "c"), (nil, nil), (nil, "p"), (nil, nil), (nil, "a"), (nil, nil), ("nz", "z"), (nil, "s"),
        (nil, "tf"), (nil, "i"), (nil, "d=b"), (nil, "o"), (nil, nil), (nil, nil), (nil, "nt"), (nil, nil),
        (nil, "rf"), (nil, "v86"), (nil, "ac"), (nil, "vif"), (nil, "vip"), (nil, "cid"),
    ]

    /// `print_flags`: a leading newline ends the IP line.
    func flags(_ value: UInt64) -> String {
        var s = "\nflags: \(hex(value, width: 8))"
        for i in stride(from: 21, through: 0, by: -1) {
            let entry = RegisterText.flagNames[i]
            if let name = (value >> UInt64(i)) & 1 == 1 ? entry.set : entry.clear { s += " \(name)" }
        }
        return s + "\n"
    }

    /// `print_special`: cr0, cr2-4 (cr2 symbolised as data) or dr0-3, dr6-7 (dr0-3 as data).
    func special(_ regs: [UInt64], name: String, mask: UInt32, addressRegs: Set<Int>, width: Int) -> String {
        var s = "\n"
        for i in 0..<32 where mask & (1 << UInt32(i)) != 0 && i < regs.count {
            let v = width == 4 ? regs[i] & 0xffff_ffff : regs[i]
            s += "\(name)\(i): \(hex(v, width: width * 2))"
            if addressRegs.contains(i) { s += sym(v, .data) }
            s += "\n"
        }
        return s
    }

    func x86_64(_ r: X86_64Registers) -> String {
        func h(_ v: UInt64) -> String { hex(v, width: 16) }
        var s = "rip: \(h(r.rip))\(sym(r.rip))" + flags(r.rflags)
        s += "rsp: \(h(r.rsp))\n"
        s += "rax: \(h(r.rax))\trcx: \(h(r.rcx))\trdx: \(h(r.rdx))\n"
        s += "rbx: \(h(r.rbx))\trsi: \(h(r.rsi))\trdi: \(h(r.rdi))\n"
        s += "rbp: \(h(r.rbp))\t r8: \(h(r.r8))\t r9: \(h(r.r9))\n"
        s += "r10: \(h(r.r10))\tr11: \(h(r.r11))\tr12: \(h(r.r12))\n"
        s += "r13: \(h(r.r13))\tr14: \(h(r.r14))\tr15: \(h(r.r15))\n"
        s += " cs: \(hex(r.cs, width: 4))\t ss: \(hex(r.ss, width: 4))\t ds: \(hex(r.ds, width: 4))\t es: \(hex(r.es, width: 4))\n"
        s += " fs: \(hex(r.fs, width: 4)) @ \(h(r.fsBase))\(sym(r.fsBase, .data))\n"
        s += " gs: \(hex(r.gs, width: 4)) @ \(h(r.gsBaseKernel))/\(h(r.gsBaseUser))"
        if hasSymbols { s += "\(sym(r.gsBaseKernel, .data))/\(sym(r.gsBaseUser, .data))" }
        s += "\n"
        if allRegisters {
            s += special(r.ctrlreg, name: "cr", mask: 0x1d, addressRegs: [2], width: 8)
            s += special(r.debugreg, name: "dr", mask: 0xcf, addressRegs: [0, 1, 2, 3], width: 8)
        }
        return s
    }

    /// `print_ctx_32` and `print_ctx_32on64` share one shape; the latter truncates.
    func x86_32(eip: UInt64, eflags: UInt64, esp: UInt64, eax: UInt64, ebx: UInt64, ecx: UInt64, edx: UInt64,
                esi: UInt64, edi: UInt64, ebp: UInt64, cs: UInt16, ss: UInt16, ds: UInt16, es: UInt16, fs: UInt16, gs: UInt16,
                ctrlreg: [UInt64], debugreg: [UInt64]) -> String {
        func h(_ v: UInt64) -> String { hex(v & 0xffff_ffff, width: 8) }
        var s = "cs:eip: \(hex(cs, width: 4)):\(h(eip))\(sym(eip & 0xffff_ffff))" + flags(eflags & 0xffff_ffff)
        s += "ss:esp: \(hex(ss, width: 4)):\(h(esp))\n"
        s += "eax: \(h(eax))\tebx: \(h(ebx))\tecx: \(h(ecx))\tedx: \(h(edx))\n"
        s += "esi: \(h(esi))\tedi: \(h(edi))\tebp: \(h(ebp))\n"
        s += " ds:     \(hex(ds, width: 4))\t es:     \(hex(es, width: 4))\t fs:     \(hex(fs, width: 4))\t gs:     \(hex(gs, width: 4))\n"
        if allRegisters {
            s += special(ctrlreg, name: "cr", mask: 0x1d, addressRegs: [2], width: 4)
            s += special(debugreg, name: "dr", mask: 0xcf, addressRegs: [0, 1, 2, 3], width: 4)
        }
        return s
    }

    func x86_32(_ r: X86_32Registers) -> String {
        x86_32(eip: UInt64(r.eip), eflags: UInt64(r.eflags), esp: UInt64(r.esp), eax: UInt64(r.eax), ebx: UInt64(r.ebx),
               ecx: UInt64(r.ecx), edx: UInt64(r.edx), esi: UInt64(r.esi), edi: UInt64(r.edi), ebp: UInt64(r.ebp),
               cs: r.cs, ss: r.ss, ds: r.ds, es: r.es, fs: r.fs, gs: r.gs,
               ctrlreg: r.ctrlreg.map(UInt64.init), debugreg: r.debugreg.map(UInt64.init))
    }

    func x86_32on64(_ r: X86_64Registers) -> String {
        x86_32(eip: r.rip, eflags: r.rflags, esp: r.rsp, eax: r.rax, ebx: r.rbx, ecx: r.rcx, edx: r.rdx,
               esi: r.rsi, edi: r.rdi, ebp: r.rbp, cs: r.cs, ss: r.ss, ds: r.ds, es: r.es, fs: r.fs, gs: r.gs,
               ctrlreg: r.ctrlreg, debugreg: r.debugreg)
    }

    /// ARM: the layout follows the vCPU's current state (CPSR bit 4), as upstream does.
    func arm(_ r: ArmRegisters) -> String {
        var s = r.isAArch32State ? aarch32(r) : aarch64(r)
        s += "TTBCR: \(hex(r.ttbcr, width: 16))\n"
        s += "TTBR0: \(hex(r.ttbr0, width: 16))\n"
        s += "TTBR1: \(hex(r.ttbr1, width: 16))\n"
        return s
    }

    func aarch32(_ r: ArmRegisters) -> String {
        func h(_ v: UInt32) -> String { hex(v, width: 8) }
        var s = "PC:       \(h(r.pc32))\(sym(UInt64(r.pc32)))\n"
        s += "CPSR:     \(hex(r.cpsr, width: 8))\n"
        s += "USR:               SP:\(h(r.spUSR)) LR:\(h(r.lrUSR))\n"
        s += "SVC: SPSR:\(h(r.spsrSVC)) SP:\(h(r.spSVC)) LR:\(h(r.lrSVC))\n"
        s += "FIQ: SPSR:\(h(r.spsrFIQ)) SP:\(h(r.spFIQ)) LR:\(h(r.lrFIQ))\n"
        s += "IRQ: SPSR:\(h(r.spsrIRQ)) SP:\(h(r.spIRQ)) LR:\(h(r.lrIRQ))\n"
        s += "ABT: SPSR:\(h(r.spsrABT)) SP:\(h(r.spABT)) LR:\(h(r.lrABT))\n"
        s += "UND: SPSR:\(h(r.spsrUND)) SP:\(h(r.spUND)) LR:\(h(r.lrUND))\n"
        s += "\n"
        func usr(_ i: Int) -> String { (i < 10 ? " " : "") + "r\(i)_usr: \(h(r.r(i)))" }
        s += "\(usr(0))\t\(usr(1))\t\(usr(2))\n"
        s += "\(usr(3))\t\(usr(4))\t\(usr(5))\n"
        s += "\(usr(6))\t\(usr(7))\t\(usr(8))\n"
        s += "\(usr(9))\t\(usr(10))\t\(usr(11))\n"
        s += "\(usr(12))\n\n"
        func fiq(_ i: Int) -> String { (i < 10 ? " " : "") + "r\(i)_fiq: \(h(r.rFIQ(i)))" }
        s += "\(fiq(8))\n"
        s += "\(fiq(9))\t\(fiq(10))\t\(fiq(11))\n"
        s += "\(fiq(12))\n\n"
        s += "SCTLR: \(hex(UInt32(truncatingIfNeeded: r.sctlr), width: 8))\n"
        return s
    }

    func aarch64(_ r: ArmRegisters) -> String {
        func h(_ v: UInt64) -> String { hex(v, width: 16) }
        var s = "PC:       \(h(r.pc))\(sym(r.pc))\n"
        s += "LR:       \(h(r.x[30]))\n"
        s += "ELR_EL1:  \(h(r.elrEL1))\n"
        s += "CPSR:     \(hex(r.cpsr, width: 8))\n"
        s += "SPSR_EL1: \(hex(r.spsrEL1, width: 8))\n"
        s += "SP_EL0:   \(h(r.spEL0))\n"
        s += "SP_EL1:   \(h(r.spEL1))\n"
        s += "\n"
        for row in stride(from: 0, to: 30, by: 3) {
            let cells = (row..<row + 3).map { ($0 < 10 ? " " : "") + "x\($0): \(h(r.x[$0]))" }
            s += cells.joined(separator: "\t") + "\n"
        }
        s += "\n"
        s += "SCTLR_EL1: \(h(r.sctlr))\n"
        return s
    }
}
