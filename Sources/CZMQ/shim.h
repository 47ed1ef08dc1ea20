// Shim over libzmq (Debian: libzmq3-dev) for Swift.
//
// Only the stable libzmq API is used: no ZMQ_BUILD_DRAFT_API (Debian's libzmq5 does not
// export the draft symbols). The static inline helpers wrap what Swift cannot import directly.
#ifndef REELFARM_CZMQ_SHIM_H
#define REELFARM_CZMQ_SHIM_H

#include <zmq.h>
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/// errno after a failed libzmq call (zmq_errno is thread-local, like errno).
static inline int czmq_errno(void) { return zmq_errno(); }

/// Whether a zmq_pollitem_t reported readability.
static inline int czmq_pollitem_readable(const zmq_pollitem_t *item) {
    return (item->revents & ZMQ_POLLIN) != 0;
}

/// A non-blocking, close-on-exec eventfd with a zero counter (the socket thread's wake-up).
/// Returns -1 and sets errno on failure.
static inline int czmq_eventfd_open(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/// Adds 1 to the eventfd counter, making the fd readable. Returns the byte count written (8) or -1 (errno set).
static inline long czmq_eventfd_post(int fd) {
    uint64_t one = 1;
    return (long)write(fd, &one, sizeof one);
}

/// Resets the eventfd counter to zero. Returns the byte count read (8) or -1 (errno set; EAGAIN if it was zero).
static inline long czmq_eventfd_drain(int fd) {
    uint64_t value = 0;
    return (long)read(fd, &value, sizeof value);
}

/// Not libzmq: the C library's heap trim, which Swift's Glibc module does not import. Hands freed heap
/// memory back to the system (glibc keeps it otherwise, in every arena that held a big answer).
static inline void czmq_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

#endif
