/* A thin, dlopen-based bridge to libxenctrl and libxenforeignmemory.
 *
 * The Xen libraries are loaded only when a live domain is asked for, so xenctx-swift
 * starts (and reads cores) on machines without them. Every function returns 0 on
 * success and -1 with errno set on failure, unless documented otherwise. */
#ifndef XENLIVE_H
#define XENLIVE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t domid;
    uint32_t flags;            /* XEN_DOMINF_* */
    uint32_t max_vcpu_id;
    uint32_t nr_online_vcpus;
    uint64_t tot_pages;
} xenlive_dominfo;

enum { XENLIVE_DOMINF_DYING = 1u << 0, XENLIVE_DOMINF_HVM = 1u << 1, XENLIVE_DOMINF_SHUTDOWN = 1u << 2, XENLIVE_DOMINF_PAUSED = 1u << 3 };

/* Loads the libraries, from `dir` when not NULL (XENCTX_XEN_LIBDIR: a Xen built elsewhere,
 * or the tests' stand-in), else by the dynamic loader's search; on failure writes a
 * message to err and returns -1. */
int xenlive_load(const char *dir, char *err, size_t errlen);
/* Opens the control and foreign-memory handles (needs root and privcmd). */
int xenlive_open(void);
/* Exact lookup: returns -2 when no domain has this id (getinfolist returns the next one). */
int xenlive_getinfo(uint32_t domid, xenlive_dominfo *out);
/* sizeof(vcpu_guest_context_any_t) on this architecture. */
size_t xenlive_context_size(void);
int xenlive_vcpu_context(uint32_t domid, uint32_t vcpu, void *buf);
int xenlive_vcpu_online(uint32_t domid, uint32_t vcpu, int *online);
int xenlive_guest_width(uint32_t domid, unsigned int *width);
/* x86 HVM: EFER and CR0 from the CPU save record. Returns -1/ENOSYS elsewhere. */
int xenlive_hvm_efer(uint32_t domid, uint32_t vcpu, uint64_t *efer, uint64_t *cr0);
int xenlive_capabilities(char *buf, size_t len);
int xenlive_version(unsigned int *major, unsigned int *minor);
/* The rest of what a core's version note holds: extraversion (16 bytes), compile info
 * (144), changeset (64) and the platform's virt_start. Fields Xen refuses are left zero. */
void xenlive_version_details(uint8_t extra[16], uint8_t compile[144], uint8_t changeset[64], uint64_t *virt_start);
/* The most frames one xenlive_read_frames call maps. */
enum { XENLIVE_MAX_FRAMES = 1024 };
/* Maps `count` frames (1..XENLIVE_MAX_FRAMES) read-only, copies them into buf (count*4096
 * bytes), unmaps. errs[i] is 0 or a negative errno for frames that could not be mapped. */
int xenlive_read_frames(uint32_t domid, const uint64_t *frames, int count, void *buf, int *errs);
/* Maps `count` frames (1..XENLIVE_MAX_FRAMES) read-only and returns the mapping, which
 * shows the frames as they are now, not a copy: mapped before a pause, read during it, it
 * costs the pause no hypercall. errs as above. Unmap with xenlive_unmap_frames (on ARM an
 * unmap is a hypercall per page, so one made after unpausing keeps it out of the pause). */
void *xenlive_map_frames(uint32_t domid, const uint64_t *frames, int count, int *errs);
int xenlive_unmap_frames(void *map, int count);
int xenlive_max_gpfn(uint32_t domid, uint64_t *gpfn);
/* libxenctrl's own core writer (the one `xl dump-core` uses). */
int xenlive_dumpcore(uint32_t domid, const char *path);

/* While a domain is paused by us, SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGPIPE unpause it before
 * the default action runs: pause and unpause through these, which record the pause for the
 * handler in the same step (signals held off between the hypercall and the record). */
int xenlive_pause_recorded(uint32_t domid);
int xenlive_unpause_recorded(uint32_t domid);
void xenlive_install_signal_handlers(void);
#endif
