// Shim over libzmq (Debian: libzmq3-dev) for Swift.
//
// Only the stable libzmq API is used: no ZMQ_BUILD_DRAFT_API (Debian's libzmq5 does not
// export the draft symbols). The static inline helpers wrap what Swift cannot import directly.
#ifndef REELFARM_CZMQ_SHIM_H
#define REELFARM_CZMQ_SHIM_H

#include <zmq.h>
#include <errno.h>
#include <sys/eventfd.h>

/// errno after a failed libzmq call (zmq_errno is thread-local, like errno).
static inline int czmq_errno(void) { return zmq_errno(); }

/// Whether a zmq_pollitem_t reported readability.
static inline int czmq_pollitem_readable(const zmq_pollitem_t *item) {
    return (item->revents & ZMQ_POLLIN) != 0;
}

#endif
