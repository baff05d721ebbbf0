/*
 * svc_args: the servers' command line. One table of options; the fixed-only ones (--ttl,
 * --sweep-every, --sweep-mode, --trim, --verbose) exist only when the program was linked with the
 * fixed store, so `leaky --ttl 1s` is an unknown flag, as a user would expect. Every value is
 * checked here, at the edge, with a message that names the flag and what it accepts.
 */
#include "svc.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "lc_http.h"
#include "lc_util.h"

enum {
    OPT_LISTEN = 256,
    OPT_DEBUG_LISTEN,
    OPT_ENTRY_BYTES,
    OPT_THREADS,
    OPT_IDLE_TIMEOUT,
    OPT_HEADER_TIMEOUT,
    OPT_TTL,
    OPT_SWEEP_EVERY,
    OPT_SWEEP_MODE,
    OPT_TRIM,
    OPT_VERBOSE,
    OPT_VERSION,
};

static const struct option common_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"debug-listen", required_argument, NULL, OPT_DEBUG_LISTEN},
    {"entry-bytes", required_argument, NULL, OPT_ENTRY_BYTES},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
};

static const struct option fixed_options[] = {
    {"ttl", required_argument, NULL, OPT_TTL},
    {"sweep-every", required_argument, NULL, OPT_SWEEP_EVERY},
    {"sweep-mode", required_argument, NULL, OPT_SWEEP_MODE},
    {"trim", no_argument, NULL, OPT_TRIM},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
};

#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))
#define N_FIXED  (sizeof(fixed_options) / sizeof(fixed_options[0]))

static bool is_fixed(void)
{
    return strcmp(store_flavor, "fixed") == 0;
}

void svc_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [options]\n"
            "  --listen HOST:PORT        serve /process here (default 127.0.0.1:8080; port 0 picks "
            "one)\n"
            "  --debug-listen HOST:PORT  serve /debug/pprof/*, /debug/memstats, /metrics here\n"
            "                            (default 127.0.0.1:6060; keep it on loopback)\n"
            "  --entry-bytes N           metadata bytes kept per request (default 1024, 1..%d)\n"
            "  --threads N               event loops (default: number of cores, 1..%d)\n"
            "  --idle-timeout DURATION   close connections idle this long (default 30s)\n"
            "  --header-timeout DURATION a request must arrive whole within this, from its first\n"
            "                            byte, or the connection is closed (default 10s)\n",
            prog, SVC_MAX_ENTRY_BYTES, SVC_MAX_THREADS);
    if (is_fixed())
        fprintf(out, "  --ttl DURATION            entries expire this long after their request "
                     "(default 60s)\n"
                     "  --sweep-every DURATION    the janitor sweeps this often (default 10s)\n"
                     "  --sweep-mode batched|scan batched: expired entries only, in short lock "
                     "holds\n"
                     "                            (default); scan: the tutorial's full pass under "
                     "the lock\n"
                     "  --trim                    malloc_trim(0) after each sweep, so RSS falls "
                     "too\n"
                     "  --verbose                 print each sweep's figures on stderr\n");
    fprintf(out, "  --help, --version         this text; the version\n"
                 "DURATION: 500ms, 10s, 2m, or plain seconds.\n");
}

static enum svc_parse_result fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return SVC_PARSE_ERROR;
}

static int parse_positive_duration(const char *text, int64_t *out)
{
    return lc_parse_duration_ns(text, out) == 0 && *out > 0 ? 0 : -1;
}

enum svc_parse_result svc_parse_args(int argc, char **argv, struct svc_config *cfg, char *err,
                                     size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 8080;
    strcpy(cfg->debug_host, "127.0.0.1");
    cfg->debug_port = 6060;
    cfg->entry_bytes = 1024;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores < 1 ? 1 : cores > SVC_MAX_THREADS ? SVC_MAX_THREADS : (int)cores;
    cfg->idle_timeout_ns = 30 * LC_NS_PER_SEC;
    cfg->header_timeout_ns = LC_HTTP_DEFAULT_HEADER_TIMEOUT_NS;
    cfg->store.ttl_ns = 60 * LC_NS_PER_SEC;
    cfg->store.sweep_every_ns = 10 * LC_NS_PER_SEC;

    struct option options[N_COMMON + N_FIXED + 1];
    size_t n = 0;
    for (size_t i = 0; i < N_COMMON; i++)
        options[n++] = common_options[i];
    if (is_fixed())
        for (size_t i = 0; i < N_FIXED; i++)
            options[n++] = fixed_options[i];
    memset(&options[n], 0, sizeof(options[n]));

    optind = 0; /* glibc: a full reset, so tests can parse many command lines */
    opterr = 0; /* we word the errors ourselves */
    int opt;
    uint64_t number;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            if (lc_parse_hostport(optarg, cfg->listen_host, sizeof(cfg->listen_host),
                                  &cfg->listen_port) != 0)
                return fail(err, errlen, "--listen: expected HOST:PORT, got '%s'", optarg);
            break;
        case OPT_DEBUG_LISTEN:
            if (lc_parse_hostport(optarg, cfg->debug_host, sizeof(cfg->debug_host),
                                  &cfg->debug_port) != 0)
                return fail(err, errlen, "--debug-listen: expected HOST:PORT, got '%s'", optarg);
            break;
        case OPT_ENTRY_BYTES:
            if (lc_parse_u64(optarg, 1, SVC_MAX_ENTRY_BYTES, &number) != 0)
                return fail(err, errlen, "--entry-bytes: expected an integer in 1..%d, got '%s'",
                            SVC_MAX_ENTRY_BYTES, optarg);
            cfg->entry_bytes = number;
            break;
        case OPT_THREADS:
            if (lc_parse_u64(optarg, 1, SVC_MAX_THREADS, &number) != 0)
                return fail(err, errlen, "--threads: expected an integer in 1..%d, got '%s'",
                            SVC_MAX_THREADS, optarg);
            cfg->threads = (int)number;
            break;
        case OPT_IDLE_TIMEOUT:
            if (parse_positive_duration(optarg, &cfg->idle_timeout_ns) != 0)
                return fail(err, errlen,
                            "--idle-timeout: expected a positive duration (e.g. 30s), got '%s'",
                            optarg);
            break;
        case OPT_HEADER_TIMEOUT:
            if (parse_positive_duration(optarg, &cfg->header_timeout_ns) != 0)
                return fail(err, errlen,
                            "--header-timeout: expected a positive duration (e.g. 10s), got '%s'",
                            optarg);
            break;
        case OPT_TTL:
            if (parse_positive_duration(optarg, &cfg->store.ttl_ns) != 0)
                return fail(err, errlen, "--ttl: expected a positive duration (e.g. 60s), got '%s'",
                            optarg);
            break;
        case OPT_SWEEP_EVERY:
            if (parse_positive_duration(optarg, &cfg->store.sweep_every_ns) != 0)
                return fail(err, errlen,
                            "--sweep-every: expected a positive duration (e.g. 10s), got '%s'",
                            optarg);
            break;
        case OPT_SWEEP_MODE:
            if (strcmp(optarg, "batched") == 0)
                cfg->store.sweep_mode = STORE_SWEEP_BATCHED;
            else if (strcmp(optarg, "scan") == 0)
                cfg->store.sweep_mode = STORE_SWEEP_SCAN;
            else
                return fail(err, errlen, "--sweep-mode: expected batched or scan, got '%s'",
                            optarg);
            break;
        case OPT_TRIM:
            cfg->store.trim = true;
            break;
        case OPT_VERBOSE:
            cfg->store.verbose = true;
            break;
        case 'h':
            return SVC_PARSE_HELP;
        case OPT_VERSION:
            return SVC_PARSE_VERSION;
        case ':':
            return fail(err, errlen, "%s needs a value", argv[optind - 1]);
        default:
            return fail(err, errlen, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(err, errlen, "unexpected argument '%s'", argv[optind]);
    return SVC_PARSE_OK;
}
