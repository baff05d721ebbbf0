/*
 * hprof_env: see hprof_env.h for the model. Here: how the capture stays allocation-free and
 * race-free, and how the environment is rewritten.
 *
 * Capture: environ is scanned for "HEAPPROF_" entries, whose names and values (with "%p"
 * expanded) are copied into a fixed pool (HPROF_ENV_POOL bytes, HPROF_ENV_MAX variables; what
 * does not fit is dropped with a message). The first caller wins a compare-and-swap and
 * captures; a concurrent caller spins until it is done (the capture is a few microseconds and
 * happens once, at load). Reading environ is what getenv does; nothing here calls setenv until
 * the constructor, which runs before main and so before the program's own threads.
 *
 * Rewriting runs in the constructor, before main and the program's threads, inside
 * hprof_internal_enter (a rewritten entry is allocated: the profiler's overhead, never a
 * sample). It edits the environ array itself, see env_remove.
 */
#include "hprof_env.h"
#include "hprof_assert.h"
#include "hprof_internal.h"
#include "hprof_proc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HPROF_ENV_MAX      32   /* HEAPPROF_* variables captured at most */
#define HPROF_ENV_POOL     8192 /* bytes of names and values captured at most */
#define HPROF_ENV_PREFIX   "HEAPPROF_"
#define HPROF_LIB_BASENAME "libheapprof.so"
#define HPROF_LOG_MAX      (PATH_MAX + 256) /* bytes of one message line */

extern char **environ;

static struct {
    const char *name[HPROF_ENV_MAX];
    const char *value[HPROF_ENV_MAX];
    size_t n;
    char pool[HPROF_ENV_POOL];
    size_t used;
    bool dropped;
} env;

enum { CAPTURE_NONE, CAPTURE_RUNNING, CAPTURE_DONE };
static atomic_int capture_state = CAPTURE_NONE;

/* Append s[0..len) to the pool, "%p" expanded when expand; NULL when the pool is full. */
static const char *pool_add(const char *s, size_t len, bool expand)
{
    char pid[24];
    int pid_len = snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    char *start = env.pool + env.used;
    size_t at = env.used;
    for (size_t i = 0; i < len; i++) {
        const char *piece = &s[i];
        size_t piece_len = 1;
        if (expand && s[i] == '%' && i + 1 < len && s[i + 1] == 'p') {
            piece = pid;
            piece_len = (size_t)pid_len;
            i++;
        }
        if (at + piece_len + 1 > sizeof(env.pool))
            return NULL;
        memcpy(env.pool + at, piece, piece_len);
        at += piece_len;
    }
    env.pool[at++] = '\0';
    env.used = at;
    return start;
}

static void capture(void)
{
    int expected = CAPTURE_NONE;
    if (!atomic_compare_exchange_strong(&capture_state, &expected, CAPTURE_RUNNING)) {
        while (atomic_load(&capture_state) != CAPTURE_DONE)
            ; /* another thread is capturing: microseconds, once */
        return;
    }
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, HPROF_ENV_PREFIX, strlen(HPROF_ENV_PREFIX)) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (eq == NULL || eq[1] == '\0')
            continue;
        size_t used = env.used;
        const char *name = env.n < HPROF_ENV_MAX ? pool_add(*e, (size_t)(eq - *e), false) : NULL;
        const char *value = name != NULL ? pool_add(eq + 1, strlen(eq + 1), true) : NULL;
        if (value == NULL) {
            env.used = used;
            env.dropped = true;
            continue;
        }
        env.name[env.n] = name;
        env.value[env.n++] = value;
    }
    atomic_store(&capture_state, CAPTURE_DONE);
}

const char *hprof_env_get(const char *name)
{
    if (atomic_load(&capture_state) != CAPTURE_DONE)
        capture();
    for (size_t i = 0; i < env.n; i++)
        if (strcmp(env.name[i], name) == 0)
            return env.value[i];
    return NULL;
}

void hprof_log_tag(char *buf, size_t len)
{
    char comm[32];
    if (hprof_proc_read("/proc/self/comm", comm, sizeof(comm)) > 0)
        comm[strcspn(comm, "\n")] = '\0';
    else
        snprintf(comm, sizeof(comm), "?");
    snprintf(buf, len, "heapprof[%ld %s]", (long)getpid(), comm);
}

void hprof_log(const char *fmt, ...)
{
    char line[HPROF_LOG_MAX];
    char tag[64];
    hprof_log_tag(tag, sizeof(tag));
    int head = snprintf(line, sizeof(line), "%s: ", tag);
    if (head < 0 || (size_t)head >= sizeof(line))
        return;
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + head, sizeof(line) - (size_t)head, fmt, ap);
    va_end(ap);
    if (body < 0)
        return;
    size_t len = (size_t)head + (size_t)body;
    if (len >= sizeof(line)) { /* cut: keep the line a line */
        len = sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    (void)!write(STDERR_FILENO, line, len);
}

/* Is this LD_PRELOAD entry the profiler? By its file name: libheapprof.so or libheapprof.so.N,
 * in any directory (ld.so also accepts a bare name searched in the library path). */
static bool is_profiler(const char *entry, size_t len)
{
    const char *base = entry;
    for (size_t i = 0; i < len; i++)
        if (entry[i] == '/')
            base = &entry[i + 1];
    size_t base_len = len - (size_t)(base - entry);
    size_t lib_len = strlen(HPROF_LIB_BASENAME);
    return base_len >= lib_len && memcmp(base, HPROF_LIB_BASENAME, lib_len) == 0 &&
           (base_len == lib_len || base[lib_len] == '.');
}

/* environ is edited directly, never through unsetenv/setenv: a program may define its own
 * (bash does: its setenv and unsetenv work on its variable table, not on environ, and it builds
 * its table from environ when main starts, after this constructor). */

/* The value of NAME in environ, or NULL. */
static const char *env_find(const char *name)
{
    size_t len = strlen(name);
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

/* Remove every NAME=... entry, moving the later ones back (as glibc's unsetenv does). */
static void env_remove(const char *name)
{
    size_t len = strlen(name);
    for (char **e = environ; e != NULL && *e != NULL;) {
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
            char **d = e;
            do
                d[0] = d[1];
            while (*d++ != NULL);
        } else {
            e++;
        }
    }
}

/* Point the existing NAME=... entry at "NAME=value" (allocated once, kept for the life of the
 * process, as environ's strings are). Only called for a name that is present. */
static void env_replace(const char *name, const char *value, size_t value_len)
{
    size_t len = strlen(name);
    char *entry = malloc(len + value_len + 2);
    if (entry == NULL)
        return;
    memcpy(entry, name, len);
    entry[len] = '=';
    memcpy(entry + len + 1, value, value_len);
    entry[len + 1 + value_len] = '\0';
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
            *e = entry;
            return;
        }
    free(entry);
}

/* LD_PRELOAD without the profiler's entries (ld.so separates them with ':' or ' '). */
static void drop_from_preload(void)
{
    const char *old = env_find("LD_PRELOAD");
    if (old == NULL)
        return;
    size_t len = strlen(old);
    char *kept = malloc(len + 1);
    if (kept == NULL)
        return;
    size_t at = 0;
    for (const char *p = old; *p != '\0';) {
        size_t n = strcspn(p, ": ");
        if (n > 0 && !is_profiler(p, n)) {
            if (at > 0)
                kept[at++] = ':';
            memcpy(kept + at, p, n);
            at += n;
        }
        p += n;
        if (*p != '\0')
            p++;
    }
    if (at == 0)
        env_remove("LD_PRELOAD");
    else if (at != len || memcmp(kept, old, len) != 0)
        env_replace("LD_PRELOAD", kept, at);
    free(kept);
}

/* For --children: what the next process sees. The values in environ are the raw ones (a
 * "%p" not yet expanded), which is what a child must get. */
static void rewrite_for_children(void)
{
    const char *http = env_find("HEAPPROF_HTTP");
    const char *colon = http != NULL ? strrchr(http, ':') : NULL;
    if (colon != NULL && strcmp(colon + 1, "0") != 0) {
        char any[HPROF_ENV_POOL];
        int n = snprintf(any, sizeof(any), "%.*s:0", (int)(colon - http), http);
        if (n > 0 && (size_t)n < sizeof(any))
            env_replace("HEAPPROF_HTTP", any, (size_t)n);
    }
    const char *file = env_find("HEAPPROF_FILE");
    if (file != NULL && *file != '\0' && strstr(file, "%p") == NULL) {
        char each[HPROF_ENV_POOL];
        int n = snprintf(each, sizeof(each), "%s.%%p", file);
        if (n > 0 && (size_t)n < sizeof(each))
            env_replace("HEAPPROF_FILE", each, (size_t)n);
    }
}

__attribute__((constructor)) static void hprof_env_init(void)
{
    (void)hprof_env_get(HPROF_ENV_PREFIX "RATE"); /* captured before anything changes */
    if (env.dropped)
        hprof_log("too many or too long HEAPPROF_* variables: some are ignored\n");
    hprof_internal_enter();
    const char *children = hprof_env_get("HEAPPROF_CHILDREN");
    if (children != NULL && strcmp(children, "0") != 0) {
        rewrite_for_children();
    } else {
        for (size_t i = 0; i < env.n; i++)
            env_remove(env.name[i]);
        drop_from_preload();
    }
    hprof_internal_exit();
}

void hprof_assert_fail(const char *cond, const char *file, int line, const char *func)
{
    hprof_log("assertion failed: %s (%s:%d, %s)\n", cond, file, line, func);
    abort();
}
