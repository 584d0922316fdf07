#ifndef CLINUX_H
#define CLINUX_H

#include <stdint.h>

/* Linux calls that need _GNU_SOURCE, which Swift's Glibc module does not define. */

/* sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE): start writeback of a range, without waiting. */
int CLinux_start_writeback(int fd, int64_t offset, int64_t nbytes);

/* setpriority(PRIO_PROCESS, gettid(), niceness): the niceness of the calling thread only. */
int CLinux_set_thread_niceness(int niceness);

/* fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length): reserve disk blocks without changing the size. */
int CLinux_reserve(int fd, int64_t offset, int64_t length);

/* O_DIRECT, the open flag for I/O that bypasses the page cache. */
int CLinux_o_direct(void);

/* Whether the CPU runs AVX2 code (always 1 off x86_64, where the MD5 lanes need nothing extra). */
int CLinux_cpu_has_avx2(void);

/* Bytes malloc has handed out and not had back, over every arena (mallinfo2: uordblks + hblkhd). */
uint64_t CLinux_heap_in_use(void);

#endif
