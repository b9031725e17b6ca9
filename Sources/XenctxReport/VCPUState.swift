import VCPUContext

/// One word per vCPU for triage (`--summary`), read from its mode and its trace: panic,
/// oops, stopped (by the panic's stop IPI), idle, hypercall, user, kernel or offline; and the
/// innermost frame that says something (`panic ← sysrq_handle_crash+0x16`).
enum VCPUState {
    static let panics: Set<String> = ["panic", "nmi_panic", "__crash_kexec"]
    static let oopses: Set<String> = ["die", "__die", "oops_end", "die_kernel_fault", "make_task_dead", "bad_mode"]
    static let stops: Set<String> = ["stop_this_cpu", "ipi_cpu_stop", "local_cpu_stop", "stop_self", "smp_stop_nmi_callback", "crash_stop_this_cpu"]
    static let idles: Set<String> = ["do_idle", "cpu_idle_poll", "default_idle_call", "cpu_startup_entry", "arch_cpu_idle", "default_idle", "cpu_idle"]
    /// Frames that only say how the CPU waits or delays.
    static let plumbing: [String] = ["xen_hypercall_", "__delay", "__const_udelay", "delay_tsc", "__timer_delay", "__delay_cycles",
                                     "arch_timer_", "native_safe_halt", "xen_safe_halt", "cpu_v7_do_idle", "cpu_ca15_do_idle", "cpu_do_idle",
                                     "xen_reboot", "machine_restart", "emergency_restart", "panic_smp_self_stop"]

    static func isUserMode(_ v: VCPU, guest: Guest) -> Bool {
        guest.description.architecture.descriptor.isUserMode(v.registers, isPV: guest.description.isPV)
    }

    static func classify(_ v: VCPU, guest: Guest, trace: ReportModel.Trace?) -> (String, String?) {
        guard v.isOnline else { return ("offline", nil) }
        return classifyContext(v, guest: guest, trace: trace)
    }

    /// The state the context itself shows, online or not (an offline vCPU's last context
    /// says what it was doing when it went down).
    static func classifyContext(_ v: VCPU, guest: Guest, trace: ReportModel.Trace?) -> (String, String?) {
        if isUserMode(v, guest: guest) { return ("user", nil) }
        let frames = (trace?.frames ?? []).filter(\.reliable)
        let names = frames.map { $0.function ?? "" }
        func at(_ i: Int) -> String? { i < frames.count ? frames[i].symbol : nil }
        if let i = names.firstIndex(where: { panics.contains($0) }) {
            return ("panic", [at(i), at(i + 1)].compactMap { $0 }.joined(separator: " ← "))
        }
        if let i = names.firstIndex(where: { oopses.contains($0) }) { return ("oops", at(i + 1) ?? at(i)) }
        if let i = names.firstIndex(where: { stops.contains($0) }) { return ("stopped", at(i)) }
        if names.contains(where: { idles.contains($0) }) { return ("idle", nil) }
        let meaningful = names.firstIndex { n in !plumbing.contains { n.hasPrefix($0) } }
        if names.first?.hasPrefix("xen_hypercall_") == true || names.first == "hypercall_page" {
            return ("hypercall", meaningful.flatMap(at))
        }
        return ("kernel", meaningful.flatMap(at) ?? at(0))
    }
}
