/* Preloaded before Debian's libfaketime 0.9.10 by `make test-2031` (README, docs/decisions.md).
 *
 * With FAKETIME_DONT_FAKE_MONOTONIC=1 the monotonic clock is the real one, yet libfaketime 0.9.10's
 * clock_nanosleep() still shifts an absolute CLOCK_MONOTONIC deadline by the faked offset: years
 * ahead, the deadline becomes negative and the kernel answers EINVAL (upstream issue
 * wolfcw/libfaketime#426). Python 3.11's time.sleep() sleeps exactly that way, so every sleep
 * failed. This wrapper hands monotonic sleeps to the kernel unchanged (the clock is not faked, so
 * there is nothing to translate) and leaves every other clock, and a faked monotonic clock (the
 * browser's, tests/faketime/chromium), to libfaketime.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *request,
                    struct timespec *remain)
{
    static int real_monotonic = -1; /* whether libfaketime leaves the monotonic clock alone */
    if (real_monotonic < 0) {
        const char *value = getenv("FAKETIME_DONT_FAKE_MONOTONIC");
        real_monotonic = value != NULL && strcmp(value, "1") == 0;
    }
    if (clock_id == CLOCK_MONOTONIC && real_monotonic) {
        /* The raw system call returns -1 and sets errno; clock_nanosleep returns the error. */
        return syscall(SYS_clock_nanosleep, clock_id, flags, request, remain) == 0 ? 0 : errno;
    }
    static int (*next)(clockid_t, int, const struct timespec *, struct timespec *);
    if (next == NULL) {
        *(void **)&next = dlsym(RTLD_NEXT, "clock_nanosleep");
        if (next == NULL) {
            return ENOSYS;
        }
    }
    return next(clock_id, flags, request, remain);
}
