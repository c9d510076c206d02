/* The compiled epoll wait (see poller.py: select.epoll.poll is the reference).
 *
 * select.epoll.poll() builds each (fd, events) pair with Py_BuildValue, whose
 * format string is parsed again for every event. With a hundred connections
 * ready at once, that was about 800 instructions for each request the worker
 * served. Here the pairs are built directly.
 *
 * wait(epfd, timeout) -> [(fd, events), ...], as select.epoll(...).poll(timeout)
 * gives it: timeout in seconds, None or negative to wait for ever, rounded up
 * to the millisecond; at most MAX_EVENTS pairs (epoll is level-triggered:
 * the rest come next time). A signal that interrupts the wait runs its
 * handler; if the handler raises, so does wait(), else the wait goes on until
 * the same deadline (PEP 475). Other errors are OSError with errno.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/epoll.h>
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

static PyObject *
poll_wait(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "wait(epfd, timeout)");
        return NULL;
    }
    int epfd;
    if (as_fd(args[0], &epfd) < 0)
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
        if (count >= 0)
            break;
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        if (PyErr_CheckSignals() < 0)
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

static PyMethodDef methods[] = {
    {"wait", (PyCFunction)(void (*)(void))poll_wait, METH_FASTCALL,
     "wait(epfd, timeout) -> [(fd, events), ...], as select.epoll.poll(timeout)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.worker._poll",
    "The compiled epoll wait (see poller.py: select.epoll.poll is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__poll(void)
{
    return PyModule_Create(&module);
}
