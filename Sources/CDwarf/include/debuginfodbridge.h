/* elfutils' debuginfod client (libdebuginfod.so.1), loaded with dlopen: only a guest
 * without BTF, with DEBUGINFOD_URLS set, needs it. */
#ifndef DEBUGINFODBRIDGE_H
#define DEBUGINFODBRIDGE_H
#include <stddef.h>

/* Finds the debuginfo file (a vmlinux with DWARF) of a build id given as lowercase hex, as
 * gdb and drgn do: through the servers of DEBUGINFOD_URLS, cached by the client in
 * DEBUGINFOD_CACHE_PATH or ~/.cache/debuginfod_client. With `progress`, a line on stderr
 * shows the download. Returns 0 and the cached file's path, or -1 with a message. */
int dib_find_debuginfo(const char *build_id_hex, int progress, char *path, size_t pathlen, char *err, size_t errlen);
#endif
