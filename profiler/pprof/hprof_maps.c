/*
 * hprof_maps: the process's executable mappings, as a pprof profile lists them.
 *
 * Model: /proc/self/maps is read afresh for every profile (a few dozen lines; dlopen may have
 * added some since the last one). Only executable segments are kept, as Go's runtime/pprof
 * does: locations point into code, and pprof maps an address back to a file offset with
 * (address - start + offset). Each mapping's GNU build-id comes first from the loaded image
 * itself (dl_iterate_phdr, then the PT_NOTE segments in memory): that is the build-id of the
 * code actually running, even when the file on disk was replaced or deleted, and it costs no
 * I/O. A mapping the dynamic linker does not know (a file mmap'ed by hand) falls back to
 * reading the file's notes with libelf.
 *
 * Invariants: mappings are sorted by start and do not overlap (the kernel's order), so a PC is
 * found by binary search. Strings are owned by the hprof_maps. Everything is allocated inside
 * hprof_internal_enter/exit. Nothing here takes a lock of the profiler; dl_iterate_phdr takes
 * the dynamic linker's lock, which is why this never runs inside malloc.
 */
#include "hprof_output.h"

#include "hprof_fork.h"
#include "hprof_hash.h"

#include <elf.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <libelf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HPROF_MAPS_MAX_BYTES (16u << 20) /* bytes: a maps file larger than this is refused */
#define HPROF_DELETED_SUFFIX " (deleted)"

static void strip_deleted(char *path)
{
    size_t len = strlen(path), suffix = strlen(HPROF_DELETED_SUFFIX);
    if (len >= suffix && strcmp(path + len - suffix, HPROF_DELETED_SUFFIX) == 0)
        path[len - suffix] = '\0';
}

/* Parse one maps line: "start-limit perms offset dev inode [path]". Returns 1 for an executable
 * mapping filled into m (path not yet copied: *path points into line), 0 to skip, -1 if the line
 * is malformed. */
static int parse_line(char *line, struct hprof_mapping *m, char **path)
{
    char *p = line, *end;
    errno = 0;
    m->start = strtoull(p, &end, 16);
    if (end == p || *end != '-')
        return -1;
    p = end + 1;
    m->limit = strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return -1;
    p = end + 1;
    char perms[5] = {0};
    for (int i = 0; i < 4; i++, p++) {
        if (*p == '\0' || *p == ' ')
            return -1;
        perms[i] = *p;
    }
    if (*p++ != ' ')
        return -1;
    m->offset = strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return -1;
    p = end + 1;
    while (*p != '\0' && *p != ' ') /* device, "fd:01" */
        p++;
    if (*p != ' ')
        return -1;
    p++;
    m->inode = strtoull(p, &end, 10);
    if (end == p || errno != 0)
        return -1;
    p = end;
    while (*p == ' ' || *p == '\t')
        p++;
    *path = p;
    if (perms[2] != 'x')
        return 0;
    /* Huge-page text leaves its unpopulated head as an unnamed inode-0 fragment; [vdso] and
     * [vsyscall] are inode 0 too but named, and are kept (Go does the same). */
    if (m->inode == 0 && *p == '\0')
        return 0;
    return 1;
}

int hprof_maps_parse(const char *text, const char *main_path, struct hprof_maps *out)
{
    memset(out, 0, sizeof(*out));
    out->main = -1;
    hprof_internal_enter();
    char *copy = strdup(text);
    size_t cap = 0;
    uint64_t sig = HPROF_HASH_INIT;
    if (copy == NULL)
        goto err;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct hprof_mapping m;
        memset(&m, 0, sizeof(m));
        char *path = NULL;
        int rc = parse_line(line, &m, &path);
        if (rc < 0) {
            errno = EINVAL;
            goto err;
        }
        if (rc == 0)
            continue;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct hprof_mapping *bigger = realloc(out->v, ncap * sizeof(*bigger));
            if (bigger == NULL)
                goto err;
            out->v = bigger;
            cap = ncap;
        }
        m.path = strdup(path);
        if (m.path == NULL)
            goto err;
        strip_deleted(m.path);
        sig = hprof_hash_bytes(sig, &m.start, sizeof(m.start));
        sig = hprof_hash_bytes(sig, &m.limit, sizeof(m.limit));
        sig = hprof_hash_bytes(sig, &m.offset, sizeof(m.offset));
        sig = hprof_hash_bytes(sig, &m.inode, sizeof(m.inode));
        sig = hprof_hash_bytes(sig, m.path, strlen(m.path) + 1);
        if (out->main < 0 && main_path != NULL && strcmp(m.path, main_path) == 0)
            out->main = (ssize_t)out->n;
        out->v[out->n++] = m;
    }
    out->signature = sig;
    free(copy);
    hprof_internal_exit();
    return 0;
err:;
    int saved = errno;
    free(copy);
    hprof_internal_exit();
    hprof_maps_free(out);
    errno = saved;
    return -1;
}

void hprof_maps_free(struct hprof_maps *maps)
{
    hprof_internal_enter();
    for (size_t i = 0; i < maps->n; i++)
        free(maps->v[i].path);
    free(maps->v);
    hprof_internal_exit();
    memset(maps, 0, sizeof(*maps));
    maps->main = -1;
}

ssize_t hprof_maps_find(const struct hprof_maps *maps, uint64_t addr)
{
    size_t lo = 0, hi = maps->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (addr < maps->v[mid].start)
            hi = mid;
        else if (addr >= maps->v[mid].limit)
            lo = mid + 1;
        else
            return (ssize_t)mid;
    }
    return -1;
}

static void to_hex(const uint8_t *bytes, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    if (len > HPROF_BUILD_ID_MAX)
        len = HPROF_BUILD_ID_MAX;
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    hex[2 * len] = '\0';
}

static size_t align_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

/* Find NT_GNU_BUILD_ID in a run of ELF notes. Names and descriptors are padded to the
 * segment's alignment (4, or 8 for 8-aligned note segments such as .note.gnu.property). */
static int notes_build_id(const uint8_t *p, size_t len, size_t align, char *hex)
{
    align = align == 8 ? 8 : 4;
    while (len >= sizeof(ElfW(Nhdr))) {
        ElfW(Nhdr) nh;
        memcpy(&nh, p, sizeof(nh));
        size_t name = align_up(nh.n_namesz, align), desc = align_up(nh.n_descsz, align);
        size_t total = align_up(sizeof(nh), align) + name + desc;
        if (name < nh.n_namesz || desc < nh.n_descsz || total > len)
            return -1;
        const uint8_t *np = p + align_up(sizeof(nh), align);
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(np, "GNU", 4) == 0 &&
            nh.n_descsz > 0) {
            to_hex(np + name, nh.n_descsz, hex);
            return 0;
        }
        p += total;
        len -= total;
    }
    return -1;
}

struct phdr_search {
    struct hprof_maps *maps;
    long page;
};

/* dl_iterate_phdr callback: give every mapping that lies in one of this object's executable
 * PT_LOAD segments the build-id from the object's PT_NOTE segments (in memory). */
static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct phdr_search *search = arg;
    char hex[2 * HPROF_BUILD_ID_MAX + 1] = "";
    int have = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uint64_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(uint64_t)(search->page - 1);
        uint64_t hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        for (size_t j = 0; j < search->maps->n; j++) {
            struct hprof_mapping *m = &search->maps->v[j];
            if (m->build_id[0] != '\0' || m->start < lo || m->start >= hi)
                continue;
            if (!have) {
                have = -1;
                for (int k = 0; k < info->dlpi_phnum && have < 0; k++) {
                    const ElfW(Phdr) *nh = &info->dlpi_phdr[k];
                    if (nh->p_type == PT_NOTE &&
                        notes_build_id((const uint8_t *)(info->dlpi_addr + nh->p_vaddr),
                                       nh->p_filesz, nh->p_align, hex) == 0)
                        have = 1;
                }
            }
            if (have > 0)
                memcpy(m->build_id, hex, sizeof(hex));
        }
    }
    return 0;
}

int hprof_build_id_of_file(const char *path, char *hex)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = -1;
    hprof_internal_enter();
    Elf *elf = NULL;
    if (elf_version(EV_CURRENT) == EV_NONE)
        goto out;
    elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf == NULL)
        goto out;
    const void *id = NULL;
    ssize_t len = dwelf_elf_gnu_build_id(elf, &id);
    if (len > 0) {
        to_hex(id, (size_t)len, hex);
        rc = 0;
    }
out:
    if (elf != NULL)
        elf_end(elf);
    hprof_internal_exit();
    close(fd);
    return rc;
}

/* Read a whole /proc file (its size is unknown to stat) into a NUL-terminated buffer. */
static char *read_proc_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (cap - len < 2) {
            char *bigger = cap < HPROF_MAPS_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (n == 0) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

int hprof_maps_read(struct hprof_maps *out)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    strip_deleted(exe);
    hprof_internal_enter();
    char *text = read_proc_file("/proc/self/maps");
    hprof_internal_exit();
    if (text == NULL)
        return -1;
    int rc = hprof_maps_parse(text, exe[0] ? exe : NULL, out);
    int saved = errno;
    hprof_internal_enter();
    free(text);
    hprof_internal_exit();
    if (rc != 0) {
        errno = saved;
        return -1;
    }
    struct phdr_search search = {out, sysconf(_SC_PAGESIZE)};
    if (search.page <= 0)
        search.page = 4096;
    hprof_fork_loader_enter(1); /* a fork must not copy the loader's lock held */
    dl_iterate_phdr(phdr_cb, &search);
    hprof_fork_loader_leave();
    for (size_t i = 0; i < out->n; i++) {
        struct hprof_mapping *m = &out->v[i];
        if (m->build_id[0] == '\0' && m->path[0] == '/')
            (void)hprof_build_id_of_file(m->path, m->build_id); /* none: stays "" */
    }
    return 0;
}
