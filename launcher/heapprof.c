/*
 * heapprof: run a program under the heap profiler, as `heaptrack PROG` does.
 *
 *   heapprof [--rate N] [--http HOST:PORT] [--file PREFIX] [--interval D] [--children]
 *            -- PROG ARGS...
 *
 * Model: the launcher is a plain program (it never loads the profiler itself). It forks; the
 * child puts libheapprof.so first in LD_PRELOAD, sets the HEAPPROF_* variables from the flags
 * and execs PROG. The profiler inside PROG takes its settings from the environment and then
 * removes itself from it (see profiler/.../hprof_env.c), so PROG's own children run without it,
 * unless HEAPPROF_CHILDREN=1 (--children): then each descendant is profiled too, with its own
 * port (HOST:0) and its own file prefix (PREFIX.PID).
 *
 * Profiles always go to files too: --file PREFIX, or heapprof.COMM.PID in the current directory
 * (heaptrack's naming), so that the summary has a profile to read and the user one to open
 * later. When PROG ends, the launcher reads the newest PREFIX.NNNN.pb.gz of PROG (written by the
 * profiler's exit handler) with pcodec, ranks functions by in-use bytes with lg_diff (the
 * `pprof -top` of loadgen diff) and prints, on stderr, where the profiles are, what was in use
 * at exit and its peak (the profile's comment peak_inuse_bytes=N, the profiler's running estimate
 * on its sampled paths), the peak RSS (wait4's rusage) and the top 5 functions.
 *
 * Exit status: PROG's; 128+N when PROG died of signal N (as shells report it); 125 when the
 * launcher itself fails (bad flag, no libheapprof.so), 126 when PROG cannot be executed, 127
 * when it is not found (the conventions of env, timeout and nice). The launcher ignores SIGINT
 * and SIGQUIT (a terminal sends them to PROG, which is in the same process group) and forwards
 * SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 to PROG (SIGUSR2 makes the profiler write a profile now).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "heapprof.h"
#include "lc_util.h"
#include "lc_version.h"
#include "lg_diff.h"
#include "pcodec.h"

#define HEAPPROF_EXIT_FAIL     125 /* the launcher's own failure */
#define HEAPPROF_EXIT_NOEXEC   126 /* PROG exists but cannot be run */
#define HEAPPROF_EXIT_NOTFOUND 127 /* PROG not found */
#define HEAPPROF_TOP           5   /* functions in the summary */
#define HEAPPROF_COMM_MAX      16  /* the kernel's TASK_COMM_LEN, NUL included */

/* Where libheapprof.so is, relative to this program: the install layout first (set by CMake:
 * CMAKE_INSTALL_BINDIR to CMAKE_INSTALL_LIBDIR), then the build tree (bin/ and lib/). */
#ifndef HEAPPROF_LIB_REL
#define HEAPPROF_LIB_REL "../lib"
#endif

struct options {
    const char *rate, *http, *file, *interval;
    bool children;
    char **argv; /* PROG ARGS... */
};

static volatile sig_atomic_t child_pid;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: heapprof [options] [--] PROG [ARGS...]\n"
            "Run PROG under the heap profiler (libheapprof.so) and summarize its heap at exit.\n"
            "  --rate N           mean bytes allocated between samples (default 524288; 1 = every\n"
            "                     allocation; 0 = off)\n"
            "  --http HOST:PORT   serve /debug/pprof/*, /debug/memstats, /metrics from PROG\n"
            "                     (port 0 picks one; the address is printed)\n"
            "  --file PREFIX      write PREFIX.NNNN.pb.gz at exit and every --interval\n"
            "                     (default heapprof.COMM.PID in the current directory)\n"
            "  --interval D       also write a profile every D (at least 1s; e.g. 10s, 2m)\n"
            "  --children         profile PROG's child processes too, each on its own port (0)\n"
            "                     and with its own prefix (PREFIX.PID); default: PROG only\n"
            "  --help, --version\n"
            "Exit status: PROG's (128+N if it died of signal N); 125 if heapprof fails, 126 if\n"
            "PROG cannot be run, 127 if it is not found.\n");
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "heapprof: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return HEAPPROF_EXIT_FAIL;
}

/* 0, or the exit status of a usage error (message printed). */
static int parse(int argc, char **argv, struct options *o)
{
    enum { OPT_RATE = 256, OPT_HTTP, OPT_FILE, OPT_INTERVAL, OPT_CHILDREN, OPT_VERSION };
    static const struct option longopts[] = {
        {"rate", required_argument, NULL, OPT_RATE},
        {"http", required_argument, NULL, OPT_HTTP},
        {"file", required_argument, NULL, OPT_FILE},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"children", no_argument, NULL, OPT_CHILDREN},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    opterr = 0; /* our own messages, with our prefix */
    int opt;
    /* '+': stop at PROG, so that PROG's own flags are never taken for ours. */
    while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        uint64_t u;
        int64_t ns;
        char host[256];
        uint16_t port;
        switch (opt) {
        case OPT_RATE:
            if (lc_parse_u64(optarg, 0, INT64_MAX, &u) != 0)
                return fail("--rate: \"%s\" is not a number of bytes (e.g. 524288; 0 = off)",
                            optarg);
            o->rate = optarg;
            break;
        case OPT_HTTP:
            if (lc_parse_hostport(optarg, host, sizeof(host), &port) != 0)
                return fail("--http: \"%s\" is not HOST:PORT (e.g. 127.0.0.1:0)", optarg);
            o->http = optarg;
            break;
        case OPT_FILE:
            if (*optarg == '\0')
                return fail("--file: the prefix is empty");
            o->file = optarg;
            break;
        case OPT_INTERVAL:
            if (lc_parse_duration_ns(optarg, &ns) != 0 || ns <= 0)
                return fail("--interval: \"%s\" is not a positive duration (e.g. 10s)", optarg);
            if (ns < HEAPPROF_INTERVAL_MIN_NS)
                return fail("--interval: %s is below the floor of %llds", optarg,
                            HEAPPROF_INTERVAL_MIN_NS / LC_NS_PER_SEC);
            o->interval = optarg;
            break;
        case OPT_CHILDREN:
            o->children = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case OPT_VERSION:
            printf(LC_VERSION_LINE_FMT, "heapprof");
            exit(0);
        default:
            if (optopt != 0 && optopt < 256)
                return fail("unknown option -%c (heapprof --help for usage)", optopt);
            return fail("unknown or incomplete option %s (heapprof --help for usage)",
                        argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return fail("no program to run (usage: heapprof [options] -- PROG [ARGS...])");
    o->argv = &argv[optind];
    return 0;
}

/* The absolute path of libheapprof.so next to this program, or -1. */
static int find_library(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    const char *rels[] = {HEAPPROF_LIB_REL, "../lib"};
    for (size_t i = 0; i < sizeof(rels) / sizeof(rels[0]); i++) {
        char candidate[PATH_MAX + 64];
        snprintf(candidate, sizeof(candidate), "%s/%s/libheapprof.so", self, rels[i]);
        if (realpath(candidate, out) != NULL && strlen(out) < len && access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

/* The kernel's name for a program run from path: its basename, cut to 15 bytes. */
static void comm_of_path(const char *path, char out[HEAPPROF_COMM_MAX])
{
    const char *base = strrchr(path, '/');
    snprintf(out, HEAPPROF_COMM_MAX, "%s", base != NULL ? base + 1 : path);
}

/* The file prefix of PROG's profiles, absolute (the profiler would make it so from the same
 * directory; the launcher needs the same path to find them). */
static int profile_prefix(const struct options *o, const char *comm, pid_t pid, char *out,
                          size_t len)
{
    char rel[PATH_MAX];
    if (o->file != NULL)
        snprintf(rel, sizeof(rel), "%s", o->file);
    else
        snprintf(rel, sizeof(rel), "heapprof.%s.%ld", comm, (long)pid);
    int n;
    if (rel[0] == '/') {
        n = snprintf(out, len, "%s", rel);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return -1;
        n = snprintf(out, len, "%s/%s", cwd, rel);
    }
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* In the child, before exec: the environment of PROG. Returns -1 (errno) on failure. */
static int set_environment(const struct options *o, const char *lib, const char *prefix)
{
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(lib) + (old != NULL ? strlen(old) + 2 : 1);
    char *preload = malloc(need);
    if (preload == NULL)
        return -1;
    snprintf(preload, need, "%s%s%s", lib, old != NULL && *old ? ":" : "", old ? old : "");
    int rc = setenv("LD_PRELOAD", preload, 1);
    free(preload);
    if (rc != 0 || setenv("HEAPPROF_FILE", prefix, 1) != 0)
        return -1;
    if (o->rate != NULL && setenv("HEAPPROF_RATE", o->rate, 1) != 0)
        return -1;
    if (o->http != NULL && setenv("HEAPPROF_HTTP", o->http, 1) != 0)
        return -1;
    if (o->interval != NULL && setenv("HEAPPROF_INTERVAL", o->interval, 1) != 0)
        return -1;
    if (o->children ? setenv("HEAPPROF_CHILDREN", "1", 1) : unsetenv("HEAPPROF_CHILDREN"))
        return -1;
    return 0;
}

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
static const int ignored[] = {SIGINT, SIGQUIT};

static void set_signals(bool launcher)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        sa.sa_handler = launcher ? forward : SIG_DFL;
        sigaction(forwarded[i], &sa, NULL);
    }
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        sa.sa_handler = launcher ? SIG_IGN : SIG_DFL;
        sigaction(ignored[i], &sa, NULL);
    }
}

/* ---- the summary ---- */

struct found {
    char newest[PATH_MAX]; /* PROG's newest PREFIX.NNNN.pb.gz, "" if none */
    long newest_seq;
    unsigned written;     /* PROG's profiles written during this run */
    unsigned descendants; /* distinct PIDs among PREFIX.PID.NNNN.pb.gz written during this run */
};

/* "1234.pb.gz" -> 1 (seq 1234); "1240.0000.pb.gz" -> 2 (pid 1240); else 0. */
static int classify(const char *rest, long *first)
{
    size_t n = strspn(rest, "0123456789");
    uint64_t a;
    if (lc_parse_u64_n(rest, n, 0, LONG_MAX, &a) != 0)
        return 0;
    *first = (long)a;
    const char *end = rest + n;
    if (strcmp(end, ".pb.gz") == 0)
        return 1;
    if (*end != '.')
        return 0;
    const char *second = end + 1;
    size_t m = strspn(second, "0123456789");
    return m > 0 && strcmp(second + m, ".pb.gz") == 0 ? 2 : 0;
}

static void find_profiles(const char *prefix, time_t since, struct found *f)
{
    memset(f, 0, sizeof(*f));
    f->newest_seq = -1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", prefix);
    char *slash = strrchr(dir, '/'); /* prefix is absolute */
    const char *base = slash + 1;
    size_t base_len = strlen(base);
    *slash = '\0';
    DIR *d = opendir(dir[0] != '\0' ? dir : "/");
    if (d == NULL)
        return;
    long pids[64];
    size_t n_pids = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, base_len) != 0 || e->d_name[base_len] != '.')
            continue;
        long first;
        int kind = classify(e->d_name + base_len + 1, &first);
        struct stat st;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (kind == 0 || stat(path, &st) != 0 || st.st_mtime < since)
            continue;
        if (kind == 1) {
            f->written++;
            if (first > f->newest_seq && strlen(path) < sizeof(f->newest)) {
                f->newest_seq = first;
                snprintf(f->newest, sizeof(f->newest), "%s", path);
            }
        } else {
            bool seen = false;
            for (size_t i = 0; i < n_pids && !seen; i++)
                seen = pids[i] == first;
            if (!seen && n_pids < sizeof(pids) / sizeof(pids[0]))
                pids[n_pids++] = first;
            if (!seen)
                f->descendants++;
        }
    }
    closedir(d);
}

/* The peak of the in-use estimate since start, from the profile's comment
 * "peak_inuse_bytes=N" (written by the profiler with every heap profile); -1 if absent. */
static int64_t profile_peak(const pcodec_profile *p)
{
    static const char key[] = "peak_inuse_bytes=";
    for (size_t i = 0; i < p->n_comment; i++) {
        const char *c = pcodec_string(p, p->comment[i]);
        if (strncmp(c, key, sizeof(key) - 1) != 0)
            continue;
        uint64_t v;
        if (lc_parse_u64(c + sizeof(key) - 1, 0, INT64_MAX, &v) == 0)
            return (int64_t)v;
    }
    return -1;
}

static void summarize(const char *tag, const char *prefix, time_t since, bool signaled,
                      bool children)
{
    struct found f;
    find_profiles(prefix, since, &f);
    if (f.newest[0] == '\0') {
        fprintf(stderr, "%s: no profile was written%s (PREFIX %s)\n", tag,
                signaled ? ": a process killed by a signal runs no exit handler" : "", prefix);
        return;
    }
    char err[256];
    pcodec_profile *p = pcodec_load_file(f.newest, err, sizeof(err));
    struct lg_diff top = {0};
    if (p == NULL || lg_diff_compute(NULL, p, &top, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", tag, f.newest, err);
        pcodec_free(p);
        return;
    }
    char inuse[32], rate[32], peak[48] = "";
    lg_format_bytes(inuse, sizeof(inuse), (double)top.total_bytes, 0);
    lg_format_bytes(rate, sizeof(rate), (double)p->period, 0);
    int64_t peak_bytes = profile_peak(p);
    if (peak_bytes >= 0) {
        memcpy(peak, "; peak ", 8);
        lg_format_bytes(peak + 7, sizeof(peak) - 7, (double)peak_bytes, 0);
    }
    if (p->period <= 0)
        fprintf(stderr, "%s: sampling was off (--rate 0): no heap figures\n", tag);
    else
        fprintf(stderr,
                "%s: in use %s: %s in %" PRId64 " objects%s (estimated, a sample every %s)\n", tag,
                signaled ? "at the last profile" : "at exit", inuse, top.total_objects, peak, rate);
    size_t shown = 0;
    for (size_t i = 0; i < top.n && shown < HEAPPROF_TOP; i++) {
        const struct lg_diff_entry *e = &top.entries[i];
        if (e->flat_bytes <= 0)
            continue;
        if (shown++ == 0)
            fprintf(stderr, "%s: top functions by in-use bytes:\n", tag);
        char b[32];
        lg_format_bytes(b, sizeof(b), (double)e->flat_bytes, 0);
        double pct = top.total_bytes > 0 ? 100.0 * (double)e->flat_bytes / top.total_bytes : 0;
        if (e->file[0] != '\0')
            fprintf(stderr, "%s: %12s %5.1f%%  %s %s:%" PRId64 "\n", tag, b, pct, e->function,
                    e->file, e->line);
        else
            fprintf(stderr, "%s: %12s %5.1f%%  %s\n", tag, b, pct, e->function);
    }
    fprintf(stderr, "%s: profile: %s", tag, f.newest);
    if (f.written > 1)
        fprintf(stderr, " (the newest of %u written)", f.written);
    fprintf(stderr, "\n");
    if (children)
        fprintf(stderr, "%s: child processes profiled: %u (%s.PID.NNNN.pb.gz)\n", tag,
                f.descendants, prefix);
    fprintf(stderr, "%s: look closer: go tool pprof -top %s\n", tag, f.newest);
    lg_diff_free(&top);
    pcodec_free(p);
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc;
    char lib[PATH_MAX];
    if (find_library(lib, sizeof(lib)) != 0)
        return fail("cannot find libheapprof.so in %s or ../lib next to this program",
                    HEAPPROF_LIB_REL);
    char comm[HEAPPROF_COMM_MAX];
    comm_of_path(o.argv[0], comm);

    /* A pipe that closes on exec: the child writes errno into it when exec fails. */
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
        return fail("pipe: %s", strerror(errno));
    time_t since = time(NULL) - 1; /* mtimes have whole seconds on some filesystems */
    fflush(NULL);
    set_signals(true);
    pid_t pid = fork();
    if (pid < 0)
        return fail("fork: %s", strerror(errno));
    if (pid == 0) {
        set_signals(false);
        close(report[0]);
        char prefix[PATH_MAX];
        int e = 0;
        if (profile_prefix(&o, comm, getpid(), prefix, sizeof(prefix)) != 0)
            e = ENAMETOOLONG;
        else if (set_environment(&o, lib, prefix) != 0)
            e = errno;
        else {
            execvp(o.argv[0], o.argv);
            e = errno;
        }
        (void)!write(report[1], &e, sizeof(e));
        _exit(e == ENOENT ? HEAPPROF_EXIT_NOTFOUND : HEAPPROF_EXIT_NOEXEC);
    }
    child_pid = pid;
    close(report[1]);
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(report[0], &exec_errno, sizeof(exec_errno));
    while (got < 0 && errno == EINTR);
    close(report[0]);

    /* Wait without reaping first: a zombie's /proc/PID/comm still names it. */
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR)
        ;
    char path[64], real_comm[HEAPPROF_COMM_MAX] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
    FILE *cf = fopen(path, "r");
    if (cf != NULL) {
        if (fgets(real_comm, sizeof(real_comm), cf) != NULL)
            real_comm[strcspn(real_comm, "\n")] = '\0';
        fclose(cf);
    }
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
        ;
    child_pid = 0;
    if (got == (ssize_t)sizeof(exec_errno)) {
        fprintf(stderr, "heapprof: cannot run %s: %s\n", o.argv[0], strerror(exec_errno));
        return exec_errno == ENOENT ? HEAPPROF_EXIT_NOTFOUND : HEAPPROF_EXIT_NOEXEC;
    }

    char tag[64];
    snprintf(tag, sizeof(tag), "heapprof[%ld %s]", (long)pid, real_comm[0] ? real_comm : comm);
    int exit_code;
    bool signaled = WIFSIGNALED(status);
    char peak[32];
    lg_format_bytes(peak, sizeof(peak), (double)ru.ru_maxrss * 1024, 0);
    if (signaled) {
        exit_code = 128 + WTERMSIG(status);
        fprintf(stderr, "%s: killed by signal %d (%s); peak RSS %s\n", tag, WTERMSIG(status),
                strsignal(WTERMSIG(status)), peak);
    } else {
        exit_code = WEXITSTATUS(status);
        fprintf(stderr, "%s: exited with status %d; peak RSS %s\n", tag, exit_code, peak);
    }
    char prefix[PATH_MAX];
    if (profile_prefix(&o, comm, pid, prefix, sizeof(prefix)) == 0)
        summarize(tag, prefix, since, signaled, o.children);
    return exit_code;
}
