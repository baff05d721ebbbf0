/*
 * hprof_proc: see hprof_proc.h.
 */
#include "hprof_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lc_util.h"

ssize_t hprof_proc_read(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

ssize_t hprof_proc_read_task(pid_t tid, const char *file, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, file);
    return hprof_proc_read(path, buf, len);
}

ssize_t hprof_proc_tasks(hprof_proc_task_fn fn, void *arg)
{
    DIR *dir = opendir("/proc/self/task");
    if (dir == NULL)
        return -1;
    ssize_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        uint64_t tid;
        if (lc_parse_u64(e->d_name, 1, INT32_MAX, &tid) != 0)
            continue; /* "." and ".." */
        fn((pid_t)tid, arg);
        n++;
    }
    closedir(dir);
    return n;
}
