/*
 * hprof_file: profiles written to files, by the C API and by HEAPPROF_FILE.
 *
 * Model: a file is either absent or a complete, fsync'ed profile. Every write goes to a temp
 * file in the same directory (so the rename stays on one filesystem), is fsync'ed, and then
 * renamed over its final name; on any error (full disk, unwritable directory) the temp file is
 * removed and -1 returned with errno, never a partial file under the final name.
 *
 * HEAPPROF_FILE=PREFIX: a constructor reads the environment once. If HEAPPROF_INTERVAL is a
 * positive duration (raised to HEAPPROF_INTERVAL_MIN_NS, with a message, when shorter), a
 * thread of ours ("hprof-file", a janitor: libjanitor's periodic thread, on CLOCK_MONOTONIC,
 * with a condition variable so that exit stops it at once) writes a profile every interval; an
 * atexit handler stops and joins it, then writes the final profile. Files are PREFIX.NNNN.pb.gz,
 * numbered after the highest number already in the directory (one readdir pass at the first dump:
 * an earlier run, or another process with the same prefix), from 0000 in an empty one. A number
 * taken since is skipped, never overwritten (rename with RENAME_NOREPLACE), so the highest number
 * is always the newest profile; a profile is written once whatever the numbers taken. A relative
 * PREFIX is made absolute at start, so a program that changes directory still writes where the user
 * asked. A fork child does not inherit the dumps (its writer thread does not exist; at its exit it
 * writes nothing).
 *
 * Locks: dump_lock serializes dumps (the interval thread against the exit handler) and guards
 * seq; the janitor's own lock carries the stop request. Neither is ever taken by malloc. Nothing
 * here runs inside malloc: the constructor and the thread are ordinary code, and every
 * allocation is inside hprof_internal_enter/exit.
 */
#include "hprof_output.h"
#include "hprof_web.h"
#include "hprof_env.h"
#include "hprof_query.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "janitor.h"
#include "lc_util.h"

#define HPROF_TMP_TRIES 100    /* temp names tried before giving up */
#define HPROF_SEQ_TRIES 100000 /* numbers skipped at most looking for a free PREFIX.NNNN */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int hprof_write_profile_fd(int fd, enum hprof_kind kind)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (hprof_pprof_take(kind, &buf, &len) != 0)
        return -1;
    int rc = write_all(fd, buf, len);
    int saved = errno;
    hprof_output_free(buf);
    errno = saved;
    return rc;
}

/* Make the rename durable: fsync the directory holding path. Best effort (some filesystems
 * refuse to fsync a directory); the file itself is already fsync'ed. */
static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Move tmp to path without replacing an existing file: -1 with EEXIST if path exists. */
static int rename_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* A filesystem without RENAME_NOREPLACE: link() never replaces either. */
    if (link(tmp, path) != 0)
        return -1;
    (void)unlink(tmp);
    return 0;
}

/* Write buf to a new temp file next to base (base.tmp.PID.N), fsync'ed and closed; its name in
 * tmp. Returns 0 / -1 (nothing left behind). */
static int write_temp(const char *base, const uint8_t *buf, size_t len, char *tmp, size_t tmp_len)
{
    int fd = -1;
    static unsigned tmp_seq; /* only makes names distinct; races are settled by O_EXCL */
    for (int i = 0; i < HPROF_TMP_TRIES && fd < 0; i++) {
        unsigned n = __atomic_fetch_add(&tmp_seq, 1, __ATOMIC_RELAXED);
        if (snprintf(tmp, tmp_len, "%s.tmp.%ld.%u", base, (long)getpid(), n) >= (int)tmp_len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            return -1;
    }
    if (fd < 0)
        return -1;
    if (write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        (void)unlink(tmp);
        errno = saved;
        return -1;
    }
    if (close(fd) != 0) {
        int saved = errno;
        (void)unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

/* Write buf to path through a temp file in the same directory (replacing what is there). */
static int write_atomic(const char *path, const uint8_t *buf, size_t len)
{
    char tmp[PATH_MAX];
    if (write_temp(path, buf, len, tmp, sizeof(tmp)) != 0)
        return -1;
    if (rename(tmp, path) != 0) {
        int saved = errno;
        (void)unlink(tmp);
        errno = saved;
        return -1;
    }
    sync_dir(path);
    return 0;
}

int hprof_write_profile_path(const char *path, enum hprof_kind kind)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (path == NULL || *path == '\0') {
        errno = EINVAL;
        return -1;
    }
    if (hprof_pprof_take(kind, &buf, &len) != 0)
        return -1;
    int rc = write_atomic(path, buf, len);
    int saved = errno;
    hprof_output_free(buf);
    errno = saved;
    return rc;
}

/* ---- HEAPPROF_FILE ---- */

static struct {
    char prefix[PATH_MAX - 32]; /* room for ".NNNN.pb.gz" and the temp suffix */
    int64_t interval_ns;        /* 0: only at exit */
    pid_t pid;                  /* the process that owns the dumps */
    unsigned seq;               /* next number to try (dump_lock) */
    bool scanned;               /* seq starts after the directory's highest (dump_lock) */
    bool warned;                /* a failure was reported on stderr (dump_lock) */
    struct janitor *writer;     /* the HEAPPROF_INTERVAL thread, or NULL */
} fw;

static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;

/* The number after the highest PREFIX.NNNN.pb.gz already in PREFIX's directory (0 when there is
 * none, or the directory cannot be read: the renames below still never overwrite). One pass
 * over the directory, at the first dump. */
static unsigned next_free_seq(const char *prefix)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(prefix, '/'); /* prefix is absolute (see hprof_file_init) */
    if (slash == NULL)
        return 0;
    snprintf(dir, sizeof(dir), "%.*s", slash == prefix ? 1 : (int)(slash - prefix), prefix);
    const char *base = slash + 1;
    size_t base_len = strlen(base);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    unsigned next = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *name = e->d_name;
        if (strncmp(name, base, base_len) != 0 || name[base_len] != '.')
            continue;
        const char *digits = name + base_len + 1;
        size_t n = strspn(digits, "0123456789");
        uint64_t seq;
        if (n < 4 || n > 9 || strcmp(digits + n, ".pb.gz") != 0 ||
            lc_parse_u64_n(digits, n, 0, UINT_MAX - 1, &seq) != 0)
            continue; /* not ours: a temp file, another prefix that starts like ours */
        if (seq >= next)
            next = (unsigned)seq + 1;
    }
    closedir(d);
    return next;
}

/* Write the next PREFIX.NNNN.pb.gz. The profile is written and fsync'ed once, to a temp file;
 * its final name is the first free number from fw.seq, taken with a rename that never
 * replaces (a number taken since the directory was read, by another process with our prefix,
 * costs one more rename, not one more write). Returns 0 / -1. */
static int dump(void)
{
    pthread_mutex_lock(&dump_lock);
    uint8_t *buf = NULL;
    size_t len = 0;
    char path[PATH_MAX], tmp[PATH_MAX];
    if (!fw.scanned) {
        hprof_internal_enter(); /* opendir allocates: the profiler's overhead, not a sample */
        unsigned first = next_free_seq(fw.prefix);
        hprof_internal_exit();
        if (first > fw.seq)
            fw.seq = first;
        fw.scanned = true;
    }
    snprintf(path, sizeof(path), "%s.%04u.pb.gz", fw.prefix, fw.seq);
    int rc = hprof_pprof_take(HPROF_HEAP, &buf, &len);
    if (rc == 0)
        rc = write_temp(fw.prefix, buf, len, tmp, sizeof(tmp));
    if (rc == 0) {
        for (int tries = 0;
             (rc = rename_noreplace(tmp, path)) != 0 && errno == EEXIST && tries < HPROF_SEQ_TRIES;
             tries++) {
            fw.seq++; /* taken: by another process with our prefix */
            snprintf(path, sizeof(path), "%s.%04u.pb.gz", fw.prefix, fw.seq);
        }
        if (rc != 0) {
            int saved = errno;
            (void)unlink(tmp);
            errno = saved;
        } else {
            sync_dir(path);
        }
    }
    if (rc == 0)
        fw.seq++;
    else if (!fw.warned) {
        fw.warned = true; /* once: a full disk would otherwise fill stderr too */
        hprof_log("cannot write %s: %s\n", path, strerror(errno));
    }
    hprof_output_free(buf);
    pthread_mutex_unlock(&dump_lock);
    return rc;
}

static void writer_tick(void *arg)
{
    (void)arg;
    (void)dump();
}

static void at_exit(void)
{
    if (getpid() != fw.pid)
        return;             /* a fork child: the dumps belong to its parent */
    hprof_internal_enter(); /* janitor_stop frees the handle */
    janitor_stop(fw.writer);
    hprof_internal_exit();
    fw.writer = NULL;
    (void)dump();
}

int hprof_file_dump_now(void)
{
    if (fw.prefix[0] == '\0' || getpid() != fw.pid) {
        errno = ENOENT; /* no HEAPPROF_FILE, or a fork child */
        return -1;
    }
    return dump();
}

/* Referenced at link time (-u hprof_file_anchor, see profiler/CMakeLists.txt) so that a static
 * link of libheapprof.a always keeps this file, and with it the HEAPPROF_FILE constructor. */
const char hprof_file_anchor[] = "HEAPPROF_FILE";

__attribute__((constructor)) static void hprof_file_init(void)
{
    const char *prefix = hprof_env_get("HEAPPROF_FILE");
    if (prefix == NULL || *prefix == '\0')
        return;
    fw.pid = getpid();
    int n;
    if (prefix[0] == '/') {
        n = snprintf(fw.prefix, sizeof(fw.prefix), "%s", prefix);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            snprintf(cwd, sizeof(cwd), ".");
        n = snprintf(fw.prefix, sizeof(fw.prefix), "%s/%s", cwd, prefix);
    }
    if (n < 0 || (size_t)n >= sizeof(fw.prefix)) {
        hprof_log("HEAPPROF_FILE is too long: no profiles will be written\n");
        return;
    }
    const char *interval = hprof_env_get("HEAPPROF_INTERVAL");
    if (interval != NULL && *interval != '\0') {
        int64_t ns = 0;
        int rc = hprof_query_interval(interval, &ns);
        if (rc < 0)
            hprof_log("HEAPPROF_INTERVAL=%s is not a positive duration (e.g. 10s): "
                      "writing at exit only\n",
                      interval);
        else
            fw.interval_ns = ns;
        if (rc == 1)
            hprof_log("HEAPPROF_INTERVAL=%s is below the floor of %llds: writing every %llds\n",
                      interval, HEAPPROF_INTERVAL_MIN_NS / LC_NS_PER_SEC,
                      HEAPPROF_INTERVAL_MIN_NS / LC_NS_PER_SEC);
    }
    hprof_internal_enter();
    if (atexit(at_exit) != 0) {
        hprof_internal_exit();
        hprof_log("cannot register the exit dump\n");
        return;
    }
    /* The janitor's thread blocks every signal: the program's handlers run on its own threads. */
    if (fw.interval_ns > 0 &&
        (fw.writer = janitor_start("hprof-file", fw.interval_ns, writer_tick, NULL)) == NULL)
        hprof_log("cannot start the HEAPPROF_INTERVAL thread: writing at exit only\n");
    hprof_internal_exit();
}
