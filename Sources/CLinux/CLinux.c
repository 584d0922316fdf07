#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>
#include "CLinux.h"

int CLinux_start_writeback(int fd, int64_t offset, int64_t nbytes) {
    return sync_file_range(fd, (off64_t)offset, (off64_t)nbytes, SYNC_FILE_RANGE_WRITE);
}

int CLinux_o_direct(void) {
    return O_DIRECT;
}

int CLinux_set_thread_niceness(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)gettid(), niceness);
}

int CLinux_reserve(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length);
}

int CLinux_cpu_has_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 1;
#endif
}

uint64_t CLinux_heap_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
}
