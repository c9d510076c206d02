/* The loop's system calls on its descriptors: the epoll wait, and reads and
 * writes on its non-blocking sockets (see poller.py and connection.py:
 * select.epoll.poll and the socket's own recv and send are the references).
 *
 * select.epoll.poll() builds each (fd, events) pair with Py_BuildValue, whose
 * format string is parsed again for every event. With a hundred connections
 * ready at once, that was about 800 instructions for each request the worker
 * served. socket.recv() and socket.send() parse their arguments from a format
 * string, check the socket's timeout, and release and take back the GIL
 * around the system call; recv() also allocates the whole buffer asked for
 * (64 KiB) and shrinks it to what came: about 2,000 instructions a request in
 * all, on sockets that cannot block. Here:
 *
 * wait(epfd, timeout) -> [(fd, events), ...], as select.epoll(...).poll(timeout)
 * gives it: timeout in seconds, None or negative to wait for ever, rounded up
 * to the millisecond; at most MAX_EVENTS pairs (epoll is level-triggered:
 * the rest come next time). The GIL is let go while it waits.
 *
 * recv(fd, size) -> bytes: at most ``size`` bytes, b"" at the end of input;
 * send(fd, data) -> int: how many bytes of ``data`` (any bytes-like) the
 * socket took. Both pass MSG_DONTWAIT, so neither can block, and neither
 * releases the GIL: a call is one copy between the kernel and memory.
 *
 * Errors are OSError with errno, as from select and the socket methods
 * (EAGAIN is BlockingIOError, EPIPE is BrokenPipeError; SIGPIPE is never
 * raised). A signal that interrupts a call runs its handler; if the handler
 * raises, so does the call, else it is made again, a wait until the same
 * deadline (PEP 475).
 *
 * recv and send take a file descriptor, not a socket object, so a caller must
 * know the descriptor is still its socket's: the worker uses them only in the
 * thread that owns the connection, while it is open (Connection).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_EVENTS 1023 /* as select.epoll.poll's default, FD_SETSIZE - 1 */

/* ``number`` into ``fd``; -1 with an error set where it is no int. (PyLong_AsLong: the private int
 * conversions change between Python versions.) A negative one is the system call's to refuse. */
static int
as_fd(PyObject *number, int *fd)
{
    long value = PyLong_AsLong(number);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "file descriptor out of range");
        return -1;
    }
    *fd = (int)value;
    return 0;
}

static double
monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

/* The wait in milliseconds for ``timeout`` seconds: -1 for ever; -2 with an error set. */
static int
timeout_ms(PyObject *timeout)
{
    if (timeout == Py_None)
        return -1;
    double seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0 && PyErr_Occurred())
        return -2;
    if (isnan(seconds)) {
        PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
        return -2;
    }
    if (seconds < 0)
        return -1;
    double ms = ceil(seconds * 1e3);
    if (ms > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "timeout is too large");
        return -2;
    }
    return (int)ms;
}

static PyObject *
ready_pairs(const struct epoll_event *events, int count)
{
    PyObject *ready = PyList_New(count);
    if (!ready)
        return NULL;
    for (int i = 0; i < count; i++) {
        PyObject *fd = PyLong_FromLong(events[i].data.fd);
        PyObject *mask = fd ? PyLong_FromUnsignedLong(events[i].events) : NULL;
        PyObject *pair = mask ? PyTuple_New(2) : NULL;
        if (!pair) {
            Py_XDECREF(fd);
            Py_XDECREF(mask);
            Py_DECREF(ready);
            return NULL;
        }
        PyTuple_SET_ITEM(pair, 0, fd);
        PyTuple_SET_ITEM(pair, 1, mask);
        PyList_SET_ITEM(ready, i, pair);
    }
    return ready;
}

/* The descriptor of a call given two arguments; -1 with an error set where they are not that. */
static int
two_args_fd(PyObject *const *args, Py_ssize_t nargs, const char *usage, int *fd)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    return as_fd(args[0], fd);
}

/* After a system call failed: 1 to make it again (EINTR, and no signal handler raised: PEP 475),
 * else 0 with the exception set (the handler's, or the call's error). */
static int
call_again(void)
{
    if (errno == EINTR)
        return PyErr_CheckSignals() == 0;
    PyErr_SetFromErrno(PyExc_OSError);
    return 0;
}

static PyObject *
poll_wait(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    int epfd;
    if (two_args_fd(args, nargs, "wait(epfd, timeout)", &epfd) < 0)
        return NULL;
    int ms = timeout_ms(args[1]);
    if (ms == -2)
        return NULL;
    double deadline = ms > 0 ? monotonic_ms() + ms : 0.0;
    /* (on the heap, as select's: 12 KiB is much of a small thread stack, and the GIL is let go) */
    struct epoll_event *events = PyMem_Malloc(MAX_EVENTS * sizeof(struct epoll_event));
    if (!events)
        return PyErr_NoMemory();
    int count;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        count = epoll_wait(epfd, events, MAX_EVENTS, ms);
        Py_END_ALLOW_THREADS
        if (count >= 0 || !call_again())
            break;
        if (ms > 0) {
            double left = ceil(deadline - monotonic_ms());
            ms = left > 0 ? (int)left : 0;
        }
    }
    PyObject *ready = count >= 0 ? ready_pairs(events, count) : NULL;
    PyMem_Free(events);
    return ready;
}

/* Reads up to this size land here, then are copied out at their size. One buffer serves every
 * thread: the GIL is held from the read to the copy. (Not on the stack: an app may have made
 * threads' stacks small with threading.stack_size, and the hand-off watcher reads too.) */
#define SMALL_READ 65536
static char small_read[SMALL_READ];

static PyObject *
sock_recv_nowait(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    int fd;
    if (two_args_fd(args, nargs, "recv(fd, size)", &fd) < 0)
        return NULL;
    Py_ssize_t size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred())
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative buffersize in recv");
        return NULL;
    }
    PyObject *large = NULL;
    char *buffer = small_read;
    if (size > SMALL_READ) {
        large = PyBytes_FromStringAndSize(NULL, size);
        if (!large)
            return NULL;
        buffer = PyBytes_AS_STRING(large);
    }
    ssize_t got;
    while ((got = recv(fd, buffer, (size_t)size, MSG_DONTWAIT)) < 0) {
        if (!call_again()) {
            Py_XDECREF(large);
            return NULL;
        }
    }
    if (!large)
        return PyBytes_FromStringAndSize(small_read, got);
    if (got != size)
        _PyBytes_Resize(&large, got);
    return large;
}

static PyObject *
sock_send_nowait(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    int fd;
    if (two_args_fd(args, nargs, "send(fd, data)", &fd) < 0)
        return NULL;
    Py_buffer data;
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    ssize_t sent;
    while ((sent = send(fd, data.buf, (size_t)data.len, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0) {
        if (!call_again()) {
            PyBuffer_Release(&data);
            return NULL;
        }
    }
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(sent);
}

static PyMethodDef methods[] = {
    {"wait", (PyCFunction)(void (*)(void))poll_wait, METH_FASTCALL,
     "wait(epfd, timeout) -> [(fd, events), ...], as select.epoll.poll(timeout)"},
    {"recv", (PyCFunction)(void (*)(void))sock_recv_nowait, METH_FASTCALL,
     "recv(fd, size) -> bytes, without blocking; b\"\" at the end of input"},
    {"send", (PyCFunction)(void (*)(void))sock_send_nowait, METH_FASTCALL,
     "send(fd, data) -> how many bytes the socket took, without blocking"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.worker._loopio",
    "The loop's system calls on its descriptors (poller.py, connection.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__loopio(void)
{
    return PyModule_Create(&module);
}
