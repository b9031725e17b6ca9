/* See debuginfodbridge.h. The library's API is declared here, not included: its header
 * (libdebuginfod-dev) is not needed to build, and the library only where it is used. */
#include "debuginfodbridge.h"
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct debuginfod_client debuginfod_client;
typedef int (*dib_progressfn)(debuginfod_client *, long, long);

static debuginfod_client *(*p_begin)(void);
static void (*p_end)(debuginfod_client *);
static int (*p_find_debuginfo)(debuginfod_client *, const unsigned char *, int, char **);
static void (*p_set_progressfn)(debuginfod_client *, dib_progressfn);

static int load(char *err, size_t errlen) {
    static void *lib;
    if (lib) return 0;
    void *l = dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!l) { snprintf(err, errlen, "libdebuginfod.so.1 cannot be loaded (Debian package libdebuginfod1): %s", dlerror()); return -1; }
    p_begin = (debuginfod_client *(*)(void))dlsym(l, "debuginfod_begin");
    p_end = (void (*)(debuginfod_client *))dlsym(l, "debuginfod_end");
    p_find_debuginfo = (int (*)(debuginfod_client *, const unsigned char *, int, char **))dlsym(l, "debuginfod_find_debuginfo");
    p_set_progressfn = (void (*)(debuginfod_client *, dib_progressfn))dlsym(l, "debuginfod_set_progressfn");
    if (!p_begin || !p_end || !p_find_debuginfo) { snprintf(err, errlen, "libdebuginfod.so.1 lacks the client API"); dlclose(l); return -1; }
    lib = l;
    return 0;
}

/* "\rdebuginfod: 12.3 of 633.0 MB" on stderr, at most once per 0.5% so a terminal keeps up. */
static long last_shown = -1;
static int progress(debuginfod_client *c, long done, long total) {
    (void)c;
    char line[96];
    int n;
    if (total > 0) {
        long permille = done * 1000 / total;
        if (permille < last_shown + 5 && done < total) return 0;
        last_shown = permille;
        n = snprintf(line, sizeof line, "\rdebuginfod: %.1f of %.1f MB", done / 1e6, total / 1e6);
    } else {
        n = snprintf(line, sizeof line, "\rdebuginfod: %.1f MB", done / 1e6);
    }
    if (n > 0) { ssize_t w = write(2, line, (size_t)n); (void)w; }
    return 0;
}

int dib_find_debuginfo(const char *build_id_hex, int show_progress, char *path, size_t pathlen, char *err, size_t errlen) {
    if (load(err, errlen) != 0) return -1;
    debuginfod_client *c = p_begin();
    if (!c) { snprintf(err, errlen, "debuginfod_begin failed"); return -1; }
    if (show_progress && p_set_progressfn) { last_shown = -1; p_set_progressfn(c, progress); }
    char *found = NULL;
    /* A build id of length 0 is read as a hex string. */
    int fd = p_find_debuginfo(c, (const unsigned char *)build_id_hex, 0, &found);
    if (show_progress && p_set_progressfn) { ssize_t w = write(2, "\r\033[K", 4); (void)w; }
    p_end(c);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(-fd));
        free(found);
        return -1;
    }
    close(fd);
    if (!found || strlen(found) >= pathlen) { snprintf(err, errlen, "the cached file's path is missing or too long"); free(found); return -1; }
    snprintf(path, pathlen, "%s", found);
    free(found);
    return 0;
}
