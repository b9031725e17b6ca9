import VCPUContext

extension Report {
    /// Code bytes, stack dump and call trace: guest memory through the vCPU's page tables.
    func memoryText(_ v: VCPU, mode: Mode, into out: inout Output) {
        // Arrives with guest memory (StackWalk).
    }
}
