import CXenLive
import Testing
@testable import LiveDomain

/// The live path needs no Xen to check that Debian's libraries provide every function it
/// resolves (libxen-dev, installed by Scripts/setup.sh, depends on them).
struct LibraryLoadingTests {
    @Test func everyFunctionResolves() throws {
        try LiveHypervisor.loadLibraries()
    }

    @Test func contextSizeMatchesTheCoreLayouts() {
        #if arch(x86_64)
        #expect(xenlive_context_size() == 5168)      // vcpu_guest_context_any_t, as in xl cores
        #elseif arch(arm64)
        #expect(xenlive_context_size() == 352)
        #endif
    }

    @Test func messagesSayWhatToDo() {
        #expect(LiveError.notXen.description.contains("--core"))
        #expect(LiveError.notRoot.description.contains("root"))
        #expect(LiveError.noSuchDomain(7).description.contains("xl list"))
        #expect(LiveError.dom0.description.contains("dom0"))
    }
}
