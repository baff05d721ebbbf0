/*
 * hprof_threads: /debug/pprof/threads, the analogue of Go's goroutine profile for a C program:
 * the stack of every thread, counted per distinct (stack, thread name).
 *
 * Capture: a thread's stack can only be walked from inside that thread, so each thread listed
 * in /proc/self/task is sent HPROF_THREADS_SIGNAL (SIGURG, which Go's runtime also uses to
 * interrupt threads: nothing else uses it in practice, and its default action is to ignore it,
 * so a stray one never kills) with tgkill, and its handler walks its own stack from the
 * ucontext into a slot prepared for it, then posts a semaphore. The collector waits at most
 * HPROF_THREADS_TIMEOUT_MS in all. A thread that blocks the signal (SigBlk in its
 * /proc/self/task/TID/status) is not asked and is reported without a stack (the profiler's own
 * threads block every signal); one that does not answer in time (stopped, in uninterruptible
 * sleep, exiting) is reported as such. The profile is refused (503) if the program installed a
 * SIGURG handler of its own; ours stays installed once set (a late signal must never find the
 * default action) and does nothing between collections.
 *
 * Side effect, as with Go's preemption signal: a thread interrupted in a system call that is
 * never restarted after a handler (epoll_wait, poll, select, nanosleep, sem_wait...) sees
 * EINTR; calls that SA_RESTART covers (read, write, accept...) are restarted. Code that treats
 * EINTR as "try again", as libevent does, is unaffected.
 *
 * Handler (async-signal-safe): no allocation, no lock; it touches its slot, atomics, libunwind's
 * local unwinder (signal-safe, and pre-warmed by the collector so that its first use is never
 * in a handler) and sem_post. The stack is walked from the kernel's ucontext with
 * UNW_INIT_SIGNAL_FRAME: the leaf is the interrupted PC itself, callers return address - 1.
 * The live capture pointer and the count of handlers inside form a Dekker pair (sequentially
 * consistent): once the collector has stored NULL and seen no handler inside, no handler can
 * touch the slots, and they are freed.
 *
 * Output: pprof with sample type and period type threads/count, period 1 (Go's goroutine
 * profile uses goroutine/count), one sample per distinct (stack, name) with a string label
 * thread=NAME; threads without a stack are listed in the profile's comments. ?debug=1 is Go's
 * count-profile text ("threads profile: total N", "COUNT @ 0x...", "# labels:" and "#" frame
 * lines, then "--- Memory map: ---" so pprof can map the addresses); ?debug=2 one traceback per
 * thread, as goroutine?debug=2. The pprof form is written by pprof/hprof_writers.c over the
 * generic builder, the text forms and the endpoint by web/hprof_threads_http.c: this file is
 * the engine only (capture and grouping).
 *
 * Locks: capture_lock serialises collections (two debug listeners may share a process). All
 * allocations are inside hprof_internal_enter/exit; a fork child starts with no collection.
 */
#include "hprof_threads.h"

#include "hprof_fork.h"
#include "hprof_proc.h"
#include "hprof_unwind.h"
#include "lc_util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HPROF_THREADS_SIGNAL     SIGURG
#define HPROF_THREADS_TIMEOUT_MS 200 /* milliseconds: the wait for every handler, in all */

enum slot_state { SLOT_IDLE, SLOT_PENDING, SLOT_BUSY, SLOT_DONE };

struct slot {
    _Atomic int state;
    pid_t tid;
    int depth;
    uintptr_t pcs[HPROF_MAX_DEPTH];
};

struct capture {
    size_t n;
    struct slot *slots;
    sem_t answered;
};

static struct capture *_Atomic live;
static _Atomic int inside; /* handlers between loading live and their last touch of it */
static pthread_mutex_t capture_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* ---- the handler ---- */

static void on_signal(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)info;
    int saved_errno = errno;
    atomic_fetch_add(&inside, 1);
    struct capture *c = atomic_load(&live);
    /* While a fork is being prepared the handler does not unwind (hprof_fork.h, the loader
     * gate): the collection times out on this thread, as on any that does not answer. */
    if (c != NULL && hprof_fork_loader_enter(0) == 0) {
        pid_t self = (pid_t)syscall(SYS_gettid);
        for (size_t i = 0; i < c->n; i++) {
            struct slot *s = &c->slots[i];
            int expected = SLOT_PENDING;
            if (s->tid != self || !atomic_compare_exchange_strong(&s->state, &expected, SLOT_BUSY))
                continue;
            s->depth = hprof_unwind_signal(uc, s->pcs);
            atomic_store(&s->state, SLOT_DONE);
            sem_post(&c->answered);
            break;
        }
        hprof_fork_loader_leave();
    }
    atomic_fetch_sub(&inside, 1);
    errno = saved_errno;
}

/* The threads stage of the fork sequence (hprof_fork.c): capture_lock is not held across fork
 * (a collection holds it while it waits for handlers); the child has no collection. */
static void atfork_child(void)
{
    pthread_mutex_init(&capture_lock, NULL);
    atomic_store(&live, NULL);
    atomic_store(&inside, 0);
}

static void register_fork_stage(void)
{
    static const struct hprof_fork_ops ops = {NULL, NULL, atfork_child};
    hprof_fork_register(HPROF_FORK_THREADS, &ops);
}

/* Install the handler unless the program handles the signal itself. capture_lock held.
 * Returns 0, or -1 (EBUSY: the program's; or the error of sigaction). */
static int install(void)
{
    struct sigaction old;
    if (sigaction(HPROF_THREADS_SIGNAL, NULL, &old) != 0)
        return -1;
    if (old.sa_flags & SA_SIGINFO) {
        if (old.sa_sigaction == on_signal)
            return 0;
        errno = EBUSY; /* the program's own handler */
        return -1;
    }
    if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
        errno = EBUSY;
        return -1;
    }
    hprof_unwind_prewarm(); /* never let libunwind's first use be a handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask); /* nothing nests inside the walk */
    if (sigaction(HPROF_THREADS_SIGNAL, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* ---- capture ---- */

/* Name, state, and whether the thread blocks our signal (1), from /proc/self/task/TID. */
static int describe(struct hprof_thread_stack *t)
{
    char buf[4096];
    if (hprof_proc_read_task(t->tid, "comm", buf, sizeof(buf)) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(t->name, sizeof(t->name), "%.15s", buf);
    }
    if (hprof_proc_read_task(t->tid, "status", buf, sizeof(buf)) <= 0)
        return 0;
    const char *state = strstr(buf, "\nState:");
    if (state != NULL) {
        const char *open_paren = strchr(state, '('),
                   *close_paren = open_paren ? strchr(open_paren, ')') : NULL;
        const char *eol = strchr(state + 1, '\n');
        if (open_paren != NULL && close_paren != NULL && (eol == NULL || close_paren < eol))
            snprintf(t->state, sizeof(t->state), "%.*s", (int)(close_paren - open_paren - 1),
                     open_paren + 1);
    }
    const char *blk = strstr(buf, "\nSigBlk:");
    if (blk == NULL)
        return 0;
    unsigned long long mask = strtoull(blk + strlen("\nSigBlk:"), NULL, 16);
    return (mask >> (HPROF_THREADS_SIGNAL - 1)) & 1;
}

static int by_tid(const void *a, const void *b)
{
    pid_t x = ((const struct hprof_thread_stack *)a)->tid;
    pid_t y = ((const struct hprof_thread_stack *)b)->tid;
    return (x > y) - (x < y);
}

/* The tids of the process (hprof_proc_tasks) into v, at most max of them. */
struct task_list {
    pid_t *v;
    size_t n, max;
};

static void keep_task(pid_t tid, void *arg)
{
    struct task_list *l = arg;
    if (l->n < l->max)
        l->v[l->n++] = tid;
}

/* The tids of /proc/self/task into out (at most max); returns how many exist, or -1. */
static ssize_t list_tasks(pid_t *out, size_t max)
{
    struct task_list l = {out, 0, out != NULL ? max : 0};
    return hprof_proc_tasks(keep_task, &l);
}

size_t hprof_threads_count(void)
{
    hprof_internal_enter();
    ssize_t n = list_tasks(NULL, 0);
    hprof_internal_exit();
    return n > 0 ? (size_t)n : 0;
}

int hprof_threads_capture(struct hprof_threads *out)
{
    memset(out, 0, sizeof(*out));
    pthread_once(&fork_once, register_fork_stage);
    out->time_ns = lc_realtime_ns();
    int rc = -1;
    pid_t *tids = NULL;
    struct capture c = {0, NULL, {{0}}};
    bool sem_ready = false;
    hprof_internal_enter();
    pthread_mutex_lock(&capture_lock);
    tids = malloc(HPROF_THREADS_MAX * sizeof(*tids));
    if (tids == NULL)
        goto out;
    ssize_t listed = list_tasks(tids, HPROF_THREADS_MAX);
    if (listed < 0)
        goto out;
    out->n_listed = (size_t)listed;
    out->n = (size_t)listed < HPROF_THREADS_MAX ? (size_t)listed : HPROF_THREADS_MAX;
    out->v = calloc(out->n ? out->n : 1, sizeof(*out->v));
    c.slots = calloc(out->n ? out->n : 1, sizeof(*c.slots));
    if (out->v == NULL || c.slots == NULL)
        goto out;
    c.n = out->n;
    if (sem_init(&c.answered, 0, 0) != 0)
        goto out;
    sem_ready = true;
    bool can_signal = install() == 0;
    for (size_t i = 0; i < out->n; i++) {
        struct hprof_thread_stack *t = &out->v[i];
        t->tid = tids[i];
        c.slots[i].tid = tids[i];
        snprintf(t->state, sizeof(t->state), "unknown");
        int blocked = describe(t);
        t->status = !can_signal ? HPROF_THREAD_NO_SIGNAL
                    : blocked   ? HPROF_THREAD_BLOCKED
                                : HPROF_THREAD_TIMEOUT; /* until it answers */
        atomic_store(&c.slots[i].state,
                     t->status == HPROF_THREAD_TIMEOUT ? SLOT_PENDING : SLOT_IDLE);
    }
    atomic_store(&live, &c);
    size_t asked = 0;
    pid_t pid = getpid();
    for (size_t i = 0; i < out->n; i++) {
        if (atomic_load(&c.slots[i].state) == SLOT_IDLE)
            continue;
        if (syscall(SYS_tgkill, pid, c.slots[i].tid, HPROF_THREADS_SIGNAL) == 0) {
            asked++;
            continue;
        }
        int expected = SLOT_PENDING; /* ESRCH: it exited since the listing */
        if (atomic_compare_exchange_strong(&c.slots[i].state, &expected, SLOT_IDLE))
            out->v[i].status = HPROF_THREAD_GONE;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += (HPROF_THREADS_TIMEOUT_MS % 1000) * 1000000L;
    deadline.tv_sec += HPROF_THREADS_TIMEOUT_MS / 1000 + deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    for (size_t answered = 0; answered < asked;) {
        if (sem_timedwait(&c.answered, &deadline) == 0)
            answered++;
        else if (errno != EINTR)
            break; /* ETIMEDOUT: the rest are reported as not answering */
    }
    atomic_store(&live, NULL);
    while (atomic_load(&inside) != 0)
        sched_yield(); /* a handler on another core finishing its walk */
    for (size_t i = 0; i < out->n; i++) {
        if (atomic_load(&c.slots[i].state) != SLOT_DONE)
            continue;
        out->v[i].status = HPROF_THREAD_OK;
        out->v[i].depth = c.slots[i].depth;
        memcpy(out->v[i].pcs, c.slots[i].pcs, (size_t)c.slots[i].depth * sizeof(uintptr_t));
    }
    qsort(out->v, out->n, sizeof(*out->v), by_tid);
    rc = 0;
out:;
    int saved = errno;
    if (sem_ready)
        sem_destroy(&c.answered);
    free(c.slots);
    free(tids);
    pthread_mutex_unlock(&capture_lock);
    if (rc != 0) {
        free(out->v);
        memset(out, 0, sizeof(*out));
    }
    hprof_internal_exit();
    if (rc != 0)
        errno = saved ? saved : ENOMEM;
    return rc;
}

void hprof_threads_release(struct hprof_threads *threads)
{
    hprof_internal_enter();
    free(threads->v);
    hprof_internal_exit();
    memset(threads, 0, sizeof(*threads));
}

const char *hprof_thread_status_text(enum hprof_thread_status status)
{
    switch (status) {
    case HPROF_THREAD_OK:
        return "ok";
    case HPROF_THREAD_BLOCKED:
        return "no stack: it blocks SIGURG";
    case HPROF_THREAD_TIMEOUT:
        return "no stack: it did not answer SIGURG in time";
    case HPROF_THREAD_GONE:
        return "no stack: it exited";
    case HPROF_THREAD_NO_SIGNAL:
        return "no stack: the program handles SIGURG itself";
    }
    return "?";
}

/* ---- grouping: one entry per distinct (stack, name), most threads first ---- */

static int same_key(const struct hprof_thread_stack *a, const struct hprof_thread_stack *b)
{
    if (a->depth != b->depth)
        return a->depth < b->depth ? -1 : 1;
    int c = memcmp(a->pcs, b->pcs, (size_t)a->depth * sizeof(a->pcs[0]));
    return c != 0 ? c : strcmp(a->name, b->name);
}

static int by_key(const void *a, const void *b)
{
    return same_key(*(const struct hprof_thread_stack *const *)a,
                    *(const struct hprof_thread_stack *const *)b);
}

static int by_count(const void *a, const void *b)
{
    const struct hprof_thread_group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return same_key(x->first, y->first);
}

struct hprof_thread_group *hprof_threads_group(const struct hprof_threads *t, size_t *n_out)
{
    const struct hprof_thread_stack **sorted = calloc(t->n ? t->n : 1, sizeof(*sorted));
    struct hprof_thread_group *groups = calloc(t->n ? t->n : 1, sizeof(*groups));
    if (sorted == NULL || groups == NULL) {
        free(sorted);
        free(groups);
        return NULL;
    }
    size_t n = 0, g = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].status == HPROF_THREAD_OK)
            sorted[n++] = &t->v[i];
    qsort(sorted, n, sizeof(*sorted), by_key);
    for (size_t i = 0; i < n; i++) {
        if (g > 0 && same_key(groups[g - 1].first, sorted[i]) == 0) {
            groups[g - 1].count++;
            continue;
        }
        groups[g].first = sorted[i];
        groups[g].count = 1;
        g++;
    }
    free(sorted);
    qsort(groups, g, sizeof(*groups), by_count);
    *n_out = g;
    return groups;
}
