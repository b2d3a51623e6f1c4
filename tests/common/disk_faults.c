/* A FAULT INJECTOR for the disk, loaded with LD_PRELOAD into the desiccant binary under test:
 * a full disk (ENOSPC), a failing one (EIO) or a read-only one (EROFS) is not something a test
 * can make a real file system do on demand, one call at a time. It fails one chosen call and
 * passes every other to the C library.
 *
 *   DISK_FAULT_OP     open | write | fsync | rename | symlink | mkdir
 *   DISK_FAULT_MATCH  a substring of the path (for write and fsync: of the file's path; for
 *                     rename and symlink: of the new name)
 *   DISK_FAULT_ERRNO  the error number to fail with
 *   DISK_FAULT_NTH    fail the n-th matching call (default 1); 0 fails every one
 *
 * Only the process named "desiccant" is touched; hooks it starts inherit LD_PRELOAD but run
 * untouched. Each injected failure is written to stderr as "disk fault: <op> <path>".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

extern char *program_invocation_short_name;

static int hits;

/* A path under /proc/self/fd/N/ (how desiccant writes into a folder it holds open) as the
 * real path of that folder, so that DISK_FAULT_MATCH sees the folder's name. */
static const char *real_path(const char *path, char *buf, size_t len) {
    const char *prefix = "/proc/self/fd/";
    if (strncmp(path, prefix, strlen(prefix)) != 0) return path;
    char *rest;
    long fd = strtol(path + strlen(prefix), &rest, 10);
    char link[64], dir[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
    ssize_t n = readlink(link, dir, sizeof dir - 1);
    if (n < 0) return path;
    dir[n] = 0;
    snprintf(buf, len, "%s%s", dir, rest);
    return buf;
}

static int should_fail(const char *op, const char *given) {
    const char *want = getenv("DISK_FAULT_OP");
    const char *match = getenv("DISK_FAULT_MATCH");
    if (!want || strcmp(want, op) != 0 || !given) return 0;
    char buf[4096];
    const char *path = real_path(given, buf, sizeof buf);
    if (strcmp(program_invocation_short_name, "desiccant") != 0) return 0;
    if (match && !strstr(path, match)) return 0;
    const char *nth = getenv("DISK_FAULT_NTH");
    int n = nth ? atoi(nth) : 1;
    hits++;
    if (n != 0 && hits != n) return 0;
    const char *e = getenv("DISK_FAULT_ERRNO");
    errno = e ? atoi(e) : EIO;
    dprintf(2, "disk fault: %s %s\n", op, path);
    return 1;
}

static const char *fd_path(int fd, char *buf, size_t len) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    if (n < 0) return NULL;
    buf[n] = 0;
    return buf;
}

#define REAL(ret, name, ...)                                  \
    static ret (*real)(__VA_ARGS__);                          \
    if (!real) real = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

int open64(const char *path, int flags, ...) {
    REAL(int, "open64", const char *, int, ...);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if ((flags & (O_WRONLY | O_RDWR)) && should_fail("open", path)) return -1;
    return real(path, flags, mode);
}

int open(const char *path, int flags, ...) {
    REAL(int, "open", const char *, int, ...);
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    if ((flags & (O_WRONLY | O_RDWR)) && should_fail("open", path)) return -1;
    return real(path, flags, mode);
}

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(ssize_t, "write", int, const void *, size_t);
    char path[4096];
    if (fd > 2 && should_fail("write", fd_path(fd, path, sizeof path))) return -1;
    return real(fd, buf, count);
}

int fsync(int fd) {
    REAL(int, "fsync", int);
    char path[4096];
    if (should_fail("fsync", fd_path(fd, path, sizeof path))) return -1;
    return real(fd);
}

int rename(const char *from, const char *to) {
    REAL(int, "rename", const char *, const char *);
    if (should_fail("rename", to)) return -1;
    return real(from, to);
}

int symlink(const char *target, const char *path) {
    REAL(int, "symlink", const char *, const char *);
    if (should_fail("symlink", path)) return -1;
    return real(target, path);
}

int mkdir(const char *path, mode_t mode) {
    REAL(int, "mkdir", const char *, mode_t);
    if (should_fail("mkdir", path)) return -1;
    return real(path, mode);
}
