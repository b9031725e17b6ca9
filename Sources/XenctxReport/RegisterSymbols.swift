import StackWalk
import Symbols
import VCPUContext

/// Registers whose values are kernel text or data, named: on a registers-only ARM core
/// they are the only clues (LR_svc in `set_cpu_online`, r14 at `sysrq_crash_op`).
/// Upstream's register lines are left as they are; these follow them, one a line.
extension Report {
    /// (register name, value) pairs worth naming, in the order the block prints them.
    func namedRegisterCandidates(_ v: VCPU) -> [(String, UInt64)] {
        switch v.registers {
        case .x86_64(let r):
            let w = guest.description.wordSize == 8
            let names = w ? ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
                          : ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp"]
            let values = [r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15]
            return zip(names, values).map { ($0, w ? $1 : $1 & 0xffff_ffff) }
        case .x86_32(let r):
            return [("eax", r.eax), ("ebx", r.ebx), ("ecx", r.ecx), ("edx", r.edx), ("esi", r.esi), ("edi", r.edi), ("ebp", r.ebp)].map { ($0, UInt64($1)) }
        case .arm(let r) where r.isAArch32State:
            var out: [(String, UInt64)] = [("LR_usr", UInt64(r.lrUSR)), ("LR_svc", UInt64(r.lrSVC)), ("LR_irq", UInt64(r.lrIRQ)),
                                           ("LR_abt", UInt64(r.lrABT)), ("LR_und", UInt64(r.lrUND)), ("LR_fiq", UInt64(r.lrFIQ))]
            out += (0..<13).map { ("r\($0)_usr", UInt64(r.r($0))) }
            out += (8..<13).map { ("r\($0)_fiq", UInt64(r.rFIQ($0))) }
            return out
        case .arm(let r):
            return [("ELR_EL1", r.elrEL1)] + (0..<31).map { ("x\($0)", r.x[$0]) }
        }
    }

    /// Each register that holds a kernel text or data address with a symbol. Link
    /// registers hold return addresses: named by their call.
    func namedRegisters(_ v: VCPU) -> [VCPUAnalysis.NamedRegister] {
        let memory = GuestMemory(guest: guest, vcpu: v)
        var out: [VCPUAnalysis.NamedRegister] = []
        var seen: Set<String> = []
        for (name, value) in namedRegisterCandidates(v) where value != 0 {
            let kind = classifier.classify(value)
            guard kind >= .data else { continue }
            let isLink = name.hasPrefix("LR") || name == "x30"
            let symbol = kind == .text && isLink && memory.frames != nil ? returnAddressSymbol(value, memory: memory) : classifier.symbol(value, kind: .data)
            guard let symbol, seen.insert("\(name) \(value)").inserted else { continue }
            out.append(VCPUAnalysis.NamedRegister(name: name, value: value, symbol: symbol))
        }
        return out
    }
}

extension String {
    /// Left-aligned in `n` columns.
    func padding(_ n: Int) -> String { self + String(repeating: " ", count: max(0, n - count)) }
}
