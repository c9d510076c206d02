/* The compiled accept (see accepting.py: the Python one is the reference).
 *
 * Python's socket.accept() calls accept4() with SOCK_CLOEXEC only, so a
 * server that wants the new socket non-blocking pays one more system call,
 * ioctl(FIONBIO), for every connection. Here accept4() is given
 * SOCK_NONBLOCK as well, and the connection is non-blocking from birth.
 *
 * accept(fd) -> (new fd, address): the address as socket.accept() gives it
 * for AF_INET and AF_INET6, None for any other family (a unix socket's peer
 * has no address worth reading). Errors are OSError with errno, so that
 * EAGAIN is BlockingIOError and ECONNABORTED is ConnectionAbortedError, as
 * with socket.accept(); EINTR is InterruptedError, and the signal's handler
 * runs when the interpreter next checks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* "a.b.c.d" of an IPv4 address into host (16 bytes at least); its length. inet_ntop and
 * Py_BuildValue's format parsing cost more than the rest of the accept in user space. */
static Py_ssize_t
ipv4_text(const struct in_addr *addr, char *host)
{
    const unsigned char *octet = (const unsigned char *)&addr->s_addr;
    char *p = host;
    for (int i = 0; i < 4; i++) {
        unsigned int n = octet[i];
        if (n >= 100)
            *p++ = (char)('0' + n / 100);
        if (n >= 10)
            *p++ = (char)('0' + n / 10 % 10);
        *p++ = (char)('0' + n % 10);
        if (i < 3)
            *p++ = '.';
    }
    return p - host;
}

/* (first, second), taking both references; NULL (both released) if either is NULL or the tuple
 * cannot be made. */
static PyObject *
pair_of(PyObject *first, PyObject *second)
{
    PyObject *pair = first && second ? PyTuple_New(2) : NULL;
    if (!pair) {
        Py_XDECREF(first);
        Py_XDECREF(second);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, first);
    PyTuple_SET_ITEM(pair, 1, second);
    return pair;
}

static PyObject *
address_of(const struct sockaddr_storage *address)
{
    char host[INET6_ADDRSTRLEN];
    if (address->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)address;
        return pair_of(PyUnicode_FromStringAndSize(host, ipv4_text(&in4->sin_addr, host)),
                       PyLong_FromLong(ntohs(in4->sin_port)));
    }
    if (address->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)address;
        if (!inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host))
            return PyErr_SetFromErrno(PyExc_OSError);
        /* (socket.accept() gives a scoped link-local address as "fe80::1%eth0"; the scope id,
         * the fourth item, says the same, and the server reads only the first two) */
        return Py_BuildValue("(siII)", host, (int)ntohs(in6->sin6_port),
                             (unsigned int)ntohl(in6->sin6_flowinfo), (unsigned int)in6->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

static PyObject *
accept_nonblocking(PyObject *module, PyObject *arg)
{
    long listener = PyLong_AsLong(arg);
    if (listener == -1 && PyErr_Occurred())
        return NULL;
    if (listener < 0 || listener > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "not a file descriptor");
        return NULL;
    }
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    int fd;
    Py_BEGIN_ALLOW_THREADS
    fd = accept4((int)listener, (struct sockaddr *)&address, &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    Py_END_ALLOW_THREADS
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    PyObject *peer = address_of(&address);
    if (!peer) {
        close(fd);
        return NULL;
    }
    PyObject *result = pair_of(PyLong_FromLong(fd), peer);
    if (!result)
        close(fd);
    return result;
}

static PyMethodDef methods[] = {
    {"accept", accept_nonblocking, METH_O,
     "accept(listener_fd) -> (fd, address): accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.worker._accept",
    "The compiled accept (see accepting.py: the Python one is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__accept(void)
{
    return PyModule_Create(&module);
}
