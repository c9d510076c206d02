/* The loop's reads and writes on its non-blocking sockets (see connection.py:
 * the socket's own recv and send are the reference).
 *
 * socket.recv() and socket.send() parse their arguments from a format
 * string, check the socket's timeout, and release and take back the GIL
 * around the system call; recv() also allocates the whole buffer asked for
 * (64 KiB) and shrinks it to what came. On a socket that cannot block, that
 * was about 2,000 instructions a request in all. Here:
 *
 * recv(fd, size) -> bytes: at most ``size`` bytes, b"" at the end of input;
 * send(fd, data) -> int: how many bytes of ``data`` (any bytes-like) the
 * socket took.
 *
 * Both pass MSG_DONTWAIT, so neither can block, and neither releases the GIL:
 * a call is one copy between the kernel and memory. Errors are OSError with
 * errno, as from the socket methods (EAGAIN is BlockingIOError, EPIPE is
 * BrokenPipeError; SIGPIPE is never raised). An interrupted call runs the
 * signal's handler and is made again (PEP 475).
 *
 * They take a file descriptor, not a socket object, so a caller must know the
 * descriptor is still its socket's: the worker uses them only in the thread
 * that owns the connection, while it is open (Connection).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>

/* Reads up to this size land here, then are copied out at their size. One buffer serves every
 * thread: the GIL is held from the read to the copy. (Not on the stack: an app may have made
 * threads' stacks small with threading.stack_size, and the hand-off watcher reads too.) */
#define SMALL_READ 65536
static char small_read[SMALL_READ];

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
        if (errno == EINTR && PyErr_CheckSignals() == 0)
            continue;
        if (!PyErr_Occurred()) /* (else the signal's handler raised) */
            PyErr_SetFromErrno(PyExc_OSError);
        Py_XDECREF(large);
        return NULL;
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
        if (errno == EINTR && PyErr_CheckSignals() == 0)
            continue;
        if (!PyErr_Occurred()) /* (else the signal's handler raised) */
            PyErr_SetFromErrno(PyExc_OSError);
        PyBuffer_Release(&data);
        return NULL;
    }
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(sent);
}

static PyMethodDef methods[] = {
    {"recv", (PyCFunction)(void (*)(void))sock_recv_nowait, METH_FASTCALL,
     "recv(fd, size) -> bytes, without blocking; b\"\" at the end of input"},
    {"send", (PyCFunction)(void (*)(void))sock_send_nowait, METH_FASTCALL,
     "send(fd, data) -> how many bytes the socket took, without blocking"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.worker._sockio",
    "The loop's reads and writes on its non-blocking sockets (connection.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__sockio(void)
{
    return PyModule_Create(&module);
}
