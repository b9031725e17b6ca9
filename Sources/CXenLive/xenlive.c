#define _GNU_SOURCE
#include "xenlive.h"
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xen/hvm/save.h>
#endif

/* Every library function used, once, with the prototypes of the installed headers. */
#define CTRL_FUNCTIONS(X) \
    X(xc_interface_open) X(xc_domain_getinfolist) X(xc_domain_pause) X(xc_domain_unpause) \
    X(xc_vcpu_getcontext) X(xc_vcpu_getinfo) X(xc_domain_get_guest_width) X(xc_version) \
    X(xc_domain_maximum_gpfn) CTRL_X86_FUNCTIONS(X)
#if defined(__x86_64__) || defined(__i386__)
#define CTRL_X86_FUNCTIONS(X) X(xc_domain_hvm_getcontext_partial)
#else
#define CTRL_X86_FUNCTIONS(X)
#endif
#define FOREIGNMEMORY_FUNCTIONS(X) X(xenforeignmemory_open) X(xenforeignmemory_map) X(xenforeignmemory_unmap)
#define DECLARE(name) static __typeof__(name) *p_##name;
CTRL_FUNCTIONS(DECLARE)
FOREIGNMEMORY_FUNCTIONS(DECLARE)
DECLARE(xc_domain_dumpcore)   /* in libxenguest, loaded only for --save-core */

static xc_interface *xch;
static xenforeignmemory_handle *fmem;
static volatile sig_atomic_t paused_valid;
static volatile uint32_t paused_domid;

static char libdir[512];

/* dlopen of `name`, from libdir when one was given, else by the loader's search. */
static void *open_library(const char *name) {
    if (!libdir[0]) return dlopen(name, RTLD_NOW | RTLD_LOCAL);
    char path[600];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", libdir, name) >= sizeof path) return NULL;
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* The sonames of each Xen release the bridge opens, newest first, spelled out whole so that the
 * package script finds them in the binary. Only releases whose headers were compared belong
 * here: every struct and prototype the bridge uses (xc_domaininfo_t, xc_vcpuinfo_t,
 * vcpu_guest_context on x86 and ARM, hvm_hw_cpu and the functions above) is the same in Xen
 * 4.17's and 4.20's (Debian bookworm's and trixie's libxen-dev, compared 2026-12-06), so a
 * binary built against either works with both. */
static const char *const ctrl_sonames[] = { "libxenctrl.so.4.20", "libxenctrl.so.4.17", NULL };
static const char *const guest_sonames[] = { "libxenguest.so.4.20", "libxenguest.so.4.17", NULL };

/* The first of `sonames` that opens, else (no library folder given) `unversioned`; `tried`
 * (triedlen 0: none) gets the names looked for. */
static void *open_first(const char *const *sonames, const char *unversioned, char *tried, size_t triedlen) {
    size_t used = 0;
    for (size_t i = 0; sonames[i]; i++) {
        void *lib = open_library(sonames[i]);
        if (lib) return lib;
        if (used < triedlen) used += (size_t)snprintf(tried + used, triedlen - used, "%s%s", i ? ", " : "", sonames[i]);
    }
    if (libdir[0]) return NULL;
    if (used < triedlen) snprintf(tried + used, triedlen - used, ", %s", unversioned);
    return open_library(unversioned);
}

int xenlive_load(const char *dir, char *err, size_t errlen) {
    static void *ctrl, *fm;
    if (ctrl && fm) return 0;
    if (dir) {
        if (strlen(dir) >= sizeof libdir) { snprintf(err, errlen, "the library folder's name is too long"); return -1; }
        snprintf(libdir, sizeof libdir, "%s", dir);
    }
    char tried[256] = "";
    if (!ctrl) ctrl = open_first(ctrl_sonames, "libxenctrl.so", tried, sizeof tried);
    if (!ctrl) { snprintf(err, errlen, "cannot load libxenctrl (tried %s)", tried); return -1; }
    if (!fm) fm = open_library("libxenforeignmemory.so.1");
    if (!fm) { snprintf(err, errlen, "cannot load libxenforeignmemory (%s)", dlerror()); return -1; }
#define LOAD_FROM(lib, name) p_##name = (__typeof__(name) *)dlsym(lib, #name); \
        if (!p_##name) { snprintf(err, errlen, "%s lacks %s", #lib, #name); return -1; }
#define LOAD_CTRL(name) LOAD_FROM(ctrl, name)
#define LOAD_FM(name) LOAD_FROM(fm, name)
    CTRL_FUNCTIONS(LOAD_CTRL)
    FOREIGNMEMORY_FUNCTIONS(LOAD_FM)
    return 0;
}

int xenlive_open(void) {
    if (!xch) xch = p_xc_interface_open(NULL, NULL, 0);
    if (!xch) return -1;
    if (!fmem) fmem = p_xenforeignmemory_open(NULL, 0);
    return fmem ? 0 : -1;
}

int xenlive_getinfo(uint32_t domid, xenlive_dominfo *out) {
    xc_domaininfo_t info;
    int n = p_xc_domain_getinfolist(xch, domid, 1, &info);
    if (n < 0) return -1;
    if (n == 0 || info.domain != domid) return -2;
    out->domid = info.domain;
    out->flags = info.flags;
    out->max_vcpu_id = info.max_vcpu_id;
    out->nr_online_vcpus = info.nr_online_vcpus;
    out->tot_pages = info.tot_pages;
    return 0;
}

size_t xenlive_context_size(void) { return sizeof(vcpu_guest_context_any_t); }

int xenlive_vcpu_context(uint32_t domid, uint32_t vcpu, void *buf) {
    memset(buf, 0, sizeof(vcpu_guest_context_any_t));
    return p_xc_vcpu_getcontext(xch, domid, vcpu, (vcpu_guest_context_any_t *)buf);
}

int xenlive_vcpu_online(uint32_t domid, uint32_t vcpu, int *online) {
    xc_vcpuinfo_t info;
    if (p_xc_vcpu_getinfo(xch, domid, vcpu, &info) != 0) return -1;
    *online = info.online;
    return 0;
}

int xenlive_guest_width(uint32_t domid, unsigned int *width) { return p_xc_domain_get_guest_width(xch, domid, width); }

int xenlive_hvm_efer(uint32_t domid, uint32_t vcpu, uint64_t *efer, uint64_t *cr0) {
#if defined(__x86_64__) || defined(__i386__)
    struct hvm_hw_cpu cpu;
    if (p_xc_domain_hvm_getcontext_partial(xch, domid, HVM_SAVE_CODE(CPU), vcpu, &cpu, sizeof cpu) != 0) return -1;
    *efer = cpu.msr_efer;
    *cr0 = cpu.cr0;
    return 0;
#else
    (void)domid; (void)vcpu; (void)efer; (void)cr0;
    errno = ENOSYS;
    return -1;
#endif
}

int xenlive_capabilities(char *buf, size_t len) {
    xen_capabilities_info_t caps;
    memset(caps, 0, sizeof caps);
    if (p_xc_version(xch, XENVER_capabilities, &caps) != 0) return -1;
    snprintf(buf, len, "%s", caps);
    return 0;
}

int xenlive_version(unsigned int *major, unsigned int *minor) {
    int v = p_xc_version(xch, XENVER_version, NULL);
    if (v < 0) return -1;
    *major = (unsigned int)v >> 16;
    *minor = (unsigned int)v & 0xffff;
    return 0;
}

void xenlive_version_details(uint8_t extra[16], uint8_t compile[144], uint8_t changeset[64], uint64_t *virt_start) {
    xen_extraversion_t e;
    xen_compile_info_t c;
    xen_changeset_info_t ch;
    xen_platform_parameters_t pp;
    memset(&e, 0, sizeof e); memset(&c, 0, sizeof c); memset(&ch, 0, sizeof ch); memset(&pp, 0, sizeof pp);
    if (p_xc_version(xch, XENVER_extraversion, &e) == 0) memcpy(extra, e, 16);
    if (p_xc_version(xch, XENVER_compile_info, &c) == 0) memcpy(compile, &c, 144);
    if (p_xc_version(xch, XENVER_changeset, &ch) == 0) memcpy(changeset, ch, 64);
    *virt_start = p_xc_version(xch, XENVER_platform_parameters, &pp) == 0 ? (uint64_t)pp.virt_start : 0;
}

void *xenlive_map_frames(uint32_t domid, const uint64_t *frames, int count, int *errs) {
    xen_pfn_t pfns[XENLIVE_MAX_FRAMES];
    if (count <= 0 || count > XENLIVE_MAX_FRAMES) { errno = EINVAL; return NULL; }
    for (int i = 0; i < count; i++) pfns[i] = (xen_pfn_t)frames[i];
    return p_xenforeignmemory_map(fmem, domid, PROT_READ, (size_t)count, pfns, errs);
}

int xenlive_read_frames(uint32_t domid, const uint64_t *frames, int count, void *buf, int *errs) {
    void *map = xenlive_map_frames(domid, frames, count, errs);
    if (!map) return -1;
    for (int i = 0; i < count; i++) {
        if (errs[i] == 0) memcpy((char *)buf + (size_t)i * 4096, (char *)map + (size_t)i * 4096, 4096);
        else memset((char *)buf + (size_t)i * 4096, 0, 4096);
    }
    p_xenforeignmemory_unmap(fmem, map, (size_t)count);
    return 0;
}

int xenlive_unmap_frames(void *map, int count) {
    return p_xenforeignmemory_unmap(fmem, map, (size_t)count);
}

int xenlive_max_gpfn(uint32_t domid, uint64_t *gpfn) {
    xen_pfn_t max;
    if (p_xc_domain_maximum_gpfn(xch, domid, &max) != 0) return -1;
    *gpfn = max;
    return 0;
}

int xenlive_dumpcore(uint32_t domid, const char *path) {
    if (!p_xc_domain_dumpcore) {
        void *guest = open_first(guest_sonames, "libxenguest.so", NULL, 0);
        if (guest) p_xc_domain_dumpcore = (__typeof__(xc_domain_dumpcore) *)dlsym(guest, "xc_domain_dumpcore");
        if (!p_xc_domain_dumpcore) { errno = ENOSYS; return -1; }
    }
    return p_xc_domain_dumpcore(xch, domid, path);
}

/* The signals whose handler unpauses (xenlive_install_signal_handlers). */
static const int handled_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE };
static const size_t handled_count = sizeof handled_signals / sizeof handled_signals[0];

/* Pausing and recording the pause for the handler (and unpausing and forgetting it) are
 * one step: the handled signals are held off across both, so none can end the tool
 * between them with the domain paused and unrecorded. errno is the hypercall's. */
static int paused_step(uint32_t domid, int pausing) {
    sigset_t hold, old;
    sigemptyset(&hold);
    for (size_t i = 0; i < handled_count; i++) sigaddset(&hold, handled_signals[i]);
    sigprocmask(SIG_BLOCK, &hold, &old);
    int rc;
    if (pausing) {
        rc = p_xc_domain_pause(xch, domid);
        if (rc == 0) { paused_domid = domid; paused_valid = 1; }
    } else {
        paused_valid = 0;
        rc = p_xc_domain_unpause(xch, domid);
    }
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return rc;
}

int xenlive_pause_recorded(uint32_t domid) { return paused_step(domid, 1); }
int xenlive_unpause_recorded(uint32_t domid) { return paused_step(domid, 0); }

static void unpause_and_die(int sig) {
    if (paused_valid && xch) {
        paused_valid = 0;
        p_xc_domain_unpause(xch, paused_domid);   /* one ioctl on privcmd */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* exit() from inside a pause (an error found while the domain is paused) skips the
 * caller's unpause: the domain is unpaused here too. */
static void unpause_at_exit(void) {
    if (paused_valid && xch) {
        paused_valid = 0;
        p_xc_domain_unpause(xch, paused_domid);
    }
}

void xenlive_install_signal_handlers(void) {
    static int registered;
    if (!registered) { registered = 1; atexit(unpause_at_exit); }
    sigset_t unblock;
    sigemptyset(&unblock);
    for (size_t i = 0; i < handled_count; i++) {
        struct sigaction old;
        /* A signal the parent ignores (nohup's SIGHUP) stays ignored: it ends nothing. */
        if (sigaction(handled_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = unpause_and_die;
        sigemptyset(&sa.sa_mask);
        sigaction(handled_signals[i], &sa, NULL);
        sigaddset(&unblock, handled_signals[i]);
    }
    /* Inherited as blocked (some launchers block them), they would wait out the pause and
     * end the tool after it, with the user's interrupt unanswered: deliver them now. */
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
}
