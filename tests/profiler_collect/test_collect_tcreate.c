/*
 * The pthread_create interposer's hooks (hprof_tcreate.h), linked as the servers link it.
 *
 * What it pins down: every thread that ran on_start runs on_exit exactly once, on the thread
 * itself, with the token its creator's on_create returned, whether its routine returns, calls
 * pthread_exit from deep inside, or is cancelled (blocked at a cancellation point, or pending
 * before it got there); the exit hooks run after the thread's own cleanup handlers and before
 * its thread-specific data destructors, with its TLS intact; the routine's return value, its
 * errno and its cancellation state are its own; a failed pthread_create drops the token without
 * a start or an exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "hprof_tcreate.h"

#define TOKEN_BASE 0x7000 /* tokens are TOKEN_BASE + creation number: never 0 */
#define MAX_EVENTS 64

/* What the hooks saw, per creation number (token - TOKEN_BASE). */
static struct {
    atomic_int starts, exits;
    atomic_int wrong_thread; /* on_exit on another thread than on_start, or TLS lost */
    atomic_int after_own_cleanup;
} ev[MAX_EVENTS];
static atomic_int n_created;
static atomic_int key_destructor_saw_exit; /* 1: the exit hook had run; -1: it had not */

static __thread uintptr_t my_token;
static __thread pid_t my_tid;
static __thread bool my_exit_ran, my_cleanup_ran;

static uintptr_t on_create(const uintptr_t *pcs, int depth)
{
    (void)pcs;
    (void)depth;
    return TOKEN_BASE + (uintptr_t)atomic_fetch_add(&n_created, 1);
}

static atomic_int bad_token, routine_errno, routine_cancel_state;

static void on_start(uintptr_t token)
{
    if (token < TOKEN_BASE || token >= TOKEN_BASE + MAX_EVENTS) {
        atomic_fetch_add(&bad_token, 1);
        return;
    }
    my_token = token;
    my_tid = gettid();
    atomic_fetch_add(&ev[token - TOKEN_BASE].starts, 1);
    errno = EIO; /* the routine must not see it */
}

static void on_exit_hook(uintptr_t token)
{
    if (token < TOKEN_BASE || token >= TOKEN_BASE + MAX_EVENTS)
        return; /* a thread another part of the process made before our hook existed */
    int i = (int)(token - TOKEN_BASE);
    if (my_token != token || my_tid != gettid())
        atomic_fetch_add(&ev[i].wrong_thread, 1);
    if (my_cleanup_ran)
        atomic_fetch_add(&ev[i].after_own_cleanup, 1);
    my_exit_ran = true;
    atomic_fetch_add(&ev[i].exits, 1);
    errno = EIO; /* pthread_join's caller must not see it; the thread's own errno is gone */
}

static int setup(void **state)
{
    (void)state;
    const struct hprof_tcreate_hooks hooks = {
        .on_create = on_create, .on_start = on_start, .on_exit = on_exit_hook};
    return hprof_tcreate_register(&hooks);
}

/* The creation number of the thread about to be made. */
static int next_index(void)
{
    return atomic_load(&n_created);
}

/* Checks on the thread, asserted by the test on the main thread (cmocka's asserts belong there). */
static void *returns(void *arg)
{
    atomic_store(&routine_errno, errno); /* 0: on_start's errno stayed in the hook */
    int state;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &state);
    atomic_store(&routine_cancel_state, state); /* the hooks' disabling did not leak */
    return (char *)arg + 1;
}

static void test_return(void **state)
{
    (void)state;
    int i = next_index();
    pthread_t t;
    static char value[2];
    assert_int_equal(pthread_create(&t, NULL, returns, value), 0);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_ptr_equal(ret, value + 1);
    assert_int_equal(atomic_load(&routine_errno), 0);
    assert_int_equal(atomic_load(&routine_cancel_state), PTHREAD_CANCEL_ENABLE);
    assert_int_equal(atomic_load(&bad_token), 0);
    assert_int_equal(atomic_load(&ev[i].starts), 1);
    assert_int_equal(atomic_load(&ev[i].exits), 1);
    assert_int_equal(atomic_load(&ev[i].wrong_thread), 0);
}

static atomic_int cleanup_after_exit_hook;

static void own_cleanup(void *arg)
{
    (void)arg;
    if (my_exit_ran) /* the program's handlers first, then the profiler's */
        atomic_fetch_add(&cleanup_after_exit_hook, 1);
    my_cleanup_ran = true;
}

static volatile int exit_now = 1; /* volatile: the compiler cannot see the recursion end */

__attribute__((noinline)) static int exit_from_deep(int depth)
{
    if (depth > 0)
        return exit_from_deep(depth - 1) + 1; /* not a tail call: the frames stay */
    if (exit_now)
        pthread_exit((void *)42);
    return 0;
}

static void *exits(void *arg)
{
    (void)arg;
    pthread_cleanup_push(own_cleanup, NULL);
    exit_from_deep(8);
    pthread_cleanup_pop(0);
    return NULL;
}

static void test_pthread_exit(void **state)
{
    (void)state;
    int i = next_index();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, exits, NULL), 0);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_ptr_equal(ret, (void *)42);
    assert_int_equal(atomic_load(&ev[i].starts), 1);
    assert_int_equal(atomic_load(&ev[i].exits), 1);
    assert_int_equal(atomic_load(&ev[i].wrong_thread), 0);
    assert_int_equal(atomic_load(&ev[i].after_own_cleanup), 1);
    assert_int_equal(atomic_load(&cleanup_after_exit_hook), 0);
}

static int pipe_fds[2];
static atomic_int blocked;

static void *blocks_in_read(void *arg)
{
    (void)arg;
    pthread_cleanup_push(own_cleanup, NULL);
    atomic_store(&blocked, 1);
    char c;
    for (;;)
        (void)read(pipe_fds[0], &c, 1); /* a cancellation point; nobody writes */
    pthread_cleanup_pop(0);
    return NULL;
}

static void test_cancel_blocked(void **state)
{
    (void)state;
    assert_int_equal(pipe(pipe_fds), 0);
    atomic_store(&blocked, 0);
    int i = next_index();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, blocks_in_read, NULL), 0);
    while (!atomic_load(&blocked))
        usleep(1000);
    usleep(20 * 1000); /* into read(2), most likely; a cancel before it is acted on there too */
    assert_int_equal(pthread_cancel(t), 0);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_ptr_equal(ret, PTHREAD_CANCELED);
    assert_int_equal(atomic_load(&ev[i].starts), 1);
    assert_int_equal(atomic_load(&ev[i].exits), 1);
    assert_int_equal(atomic_load(&ev[i].wrong_thread), 0);
    assert_int_equal(atomic_load(&ev[i].after_own_cleanup), 1);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* Cancelled before its first cancellation point: the cancel may even arrive while its start
 * hooks run (with cancellation disabled); the first point it reaches acts on it. */
static atomic_int go;

static void *cancelled_early(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        ; /* no cancellation point here */
    pthread_testcancel();
    return NULL; /* not reached */
}

static void test_cancel_pending(void **state)
{
    (void)state;
    atomic_store(&go, 0);
    int i = next_index();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancelled_early, NULL), 0);
    assert_int_equal(pthread_cancel(t), 0);
    atomic_store(&go, 1);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_ptr_equal(ret, PTHREAD_CANCELED);
    assert_int_equal(atomic_load(&ev[i].starts), 1);
    assert_int_equal(atomic_load(&ev[i].exits), 1);
    assert_int_equal(atomic_load(&ev[i].wrong_thread), 0);
}

/* The exit hooks run before the thread-specific data destructors. */
static pthread_key_t key;

static void key_destructor(void *v)
{
    (void)v;
    atomic_store(&key_destructor_saw_exit, my_exit_ran ? 1 : -1);
}

static void *sets_key(void *arg)
{
    pthread_setspecific(key, arg);
    return NULL;
}

static void test_before_key_destructors(void **state)
{
    (void)state;
    assert_int_equal(pthread_key_create(&key, key_destructor), 0);
    int i = next_index();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, sets_key, &key), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&key_destructor_saw_exit), 1);
    assert_int_equal(atomic_load(&ev[i].exits), 1);
    pthread_key_delete(key);
}

/* A detached thread that returns: nobody joins it, its exit hook runs all the same. */
static void *detached(void *arg)
{
    (void)arg;
    return NULL;
}

static void test_detached(void **state)
{
    (void)state;
    int i = next_index();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    assert_int_equal(pthread_create(&t, &attr, detached, NULL), 0);
    pthread_attr_destroy(&attr);
    for (int waited = 0; atomic_load(&ev[i].exits) == 0 && waited < 10000; waited++)
        usleep(1000); /* at most 10 s */
    assert_int_equal(atomic_load(&ev[i].starts), 1);
    assert_int_equal(atomic_load(&ev[i].exits), 1);
}

/* pthread_create fails (a stack larger than the address space): on_create ran, the
 * thread never did, and neither start nor exit hook runs for that token. */
static void test_failed_create(void **state)
{
    (void)state;
    int i = next_index();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    assert_int_equal(pthread_attr_setstacksize(&attr, (size_t)1 << 50), 0); /* 1 PiB */
    pthread_t t;
    assert_int_not_equal(pthread_create(&t, &attr, detached, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_int_equal(atomic_load(&n_created), i + 1); /* on_create ran */
    usleep(20 * 1000);
    assert_int_equal(atomic_load(&ev[i].starts), 0);
    assert_int_equal(atomic_load(&ev[i].exits), 0);
    /* and the next thread works as before */
    test_return(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_return),
        cmocka_unit_test(test_pthread_exit),
        cmocka_unit_test(test_cancel_blocked),
        cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_before_key_destructors),
        cmocka_unit_test(test_detached),
        cmocka_unit_test(test_failed_create),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
