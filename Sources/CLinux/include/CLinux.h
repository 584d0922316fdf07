#ifndef CLINUX_H
#define CLINUX_H

#include <stdint.h>

/* Linux calls that need _GNU_SOURCE, which Swift's Glibc module does not define. */

/* sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE): start writeback of a range, without waiting. */
int CLinux_start_writeback(int fd, int64_t offset, int64_t nbytes);

/* O_DIRECT, the open flag for I/O that bypasses the page cache. */
int CLinux_o_direct(void);

#endif
