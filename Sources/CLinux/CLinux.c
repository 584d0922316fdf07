#define _GNU_SOURCE
#include <fcntl.h>
#include "CLinux.h"

int CLinux_start_writeback(int fd, int64_t offset, int64_t nbytes) {
    return sync_file_range(fd, (off64_t)offset, (off64_t)nbytes, SYNC_FILE_RANGE_WRITE);
}

int CLinux_o_direct(void) {
    return O_DIRECT;
}
