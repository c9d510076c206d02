/* The compiled environ builder (see environ.py: build_environ's Python path is the reference).
 *
 * fast_environ(base, method, target, version, headers) -> the environ's head
 * keys, or None "in doubt". It does what environ.py does for the common
 * request, in one pass and without the interpreter: a copy of the
 * connection's keys, the request line's keys, one HTTP_ key per header and
 * the Host header split into SERVER_NAME and SERVER_PORT. Anything less
 * common is declined, and Python builds the whole environ:
 *   - a target that is not origin-form, or holds '%' or '#';
 *   - a SCRIPT_NAME to strip (set in the environment);
 *   - a header name with '_' (only a trusted proxy's may count) or not ASCII;
 *   - a header sent twice, whose values are joined;
 *   - a Host that is an IPv6 literal, or not Latin-1 text.
 * What follows the head (wsgi.input, a chunked body's length, trusted
 * proxies' headers) is Python's in both cases.
 *
 * fast_stamp(environ, seen, now) -> the queue time, as queuetime.stamp (the
 * reference) gives it for a request whose client sent no X-Request-Start,
 * and the two keys it sets; None where one was sent (Python weighs whether
 * to believe it) or a time is not a plain float of a sane size.
 *
 * roomy(dict) -> an equal dict whose copies grow no table for a request's keys.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define KEYS_MAX 1024 /* as environ.py's _HEADER_KEYS: heads repeat the same few names */
#define KEY_NAME_MAX 64
/* Keys past the worker's shared ones (base_environ's 9) that an environ takes without growing:
 * a listener's and a connection's 5, then a request's head, wsgi.input and the queue time. 9 + 33
 * fill a 64-slot table. */
#define ROOM 33

static PyObject *KEYS; /* lower-case header name -> its environ key */
static PyObject *K_REQUEST_METHOD, *K_RAW_URI, *K_PATH_INFO, *K_QUERY_STRING, *K_SERVER_PROTOCOL,
    *K_SCRIPT_NAME, *K_HTTP_HOST, *K_SERVER_NAME, *K_SERVER_PORT, *K_REQUEST_START, *K_QUEUE_TIME, *EMPTY;

/* The environ key for header ``name`` (a new reference); NULL without an error set: in doubt. */
static PyObject *
header_key(PyObject *name)
{
    PyObject *key = PyDict_GetItemWithError(KEYS, name);
    if (key) {
        Py_INCREF(key);
        return key;
    }
    if (PyErr_Occurred() || !PyUnicode_CheckExact(name) || PyUnicode_KIND(name) != PyUnicode_1BYTE_KIND)
        return NULL;
    Py_ssize_t size = PyUnicode_GET_LENGTH(name);
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(name);
    key = PyUnicode_New(size + 5, 127);
    if (!key)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(key);
    memcpy(out, "HTTP_", 5);
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_UCS1 c = text[i];
        if (c == '_' || c >= 0x80) { /* Python decides: dropped or kept for a proxy; or not ASCII */
            Py_DECREF(key);
            return NULL;
        }
        out[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? c - 32 : c;
    }
    if (PyDict_GET_SIZE(KEYS) < KEYS_MAX && size <= KEY_NAME_MAX && PyDict_SetItem(KEYS, name, key) < 0) {
        Py_DECREF(key);
        return NULL;
    }
    return key;
}

static int
set_slice(PyObject *environ, PyObject *key, PyObject *text, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *part = PyUnicode_Substring(text, start, end);
    if (!part)
        return -1;
    int failed = PyDict_SetItem(environ, key, part);
    Py_DECREF(part);
    return failed;
}

/* SERVER_NAME and SERVER_PORT from a Host value, as environ._split_host does; 1: done, 0: in doubt. */
static int
split_host(PyObject *environ, PyObject *host)
{
    if (PyUnicode_KIND(host) != PyUnicode_1BYTE_KIND)
        return 0;
    Py_ssize_t size = PyUnicode_GET_LENGTH(host);
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(host);
    if (text[0] == '[')
        return 0;
    Py_ssize_t colon = size - 1;
    while (colon >= 0 && text[colon] != ':')
        colon--;
    int digits = colon >= 0 && colon + 1 < size;
    for (Py_ssize_t i = colon + 1; colon >= 0 && i < size; i++) {
        if (text[i] >= 0x80)
            return 0; /* str.isdigit() knows digits beyond ASCII: Python judges */
        if (text[i] < '0' || text[i] > '9')
            digits = 0;
    }
    if (!digits)
        return PyDict_SetItem(environ, K_SERVER_NAME, host) < 0 ? -1 : 1;
    if (set_slice(environ, K_SERVER_NAME, host, 0, colon) < 0 ||
        set_slice(environ, K_SERVER_PORT, host, colon + 1, size) < 0)
        return -1;
    return 1;
}

/* roomy(mapping) -> a dict equal to ``mapping``, with room for a request's keys.
 *
 * A dict's copy has the table of what it copies. Each environ is a copy of its
 * connection's keys, a copy of its listener's, a copy of the worker's shared
 * keys: where those are made here, with a table sized for a request's keys to
 * come, an environ takes the head's keys, wsgi.input, the queue time and an
 * app's own without growing (a dict that grows makes a new table and rehashes
 * every key into it). */
static PyObject *
roomy(PyObject *module, PyObject *mapping)
{
    (void)module;
    if (!PyDict_CheckExact(mapping)) {
        PyErr_SetString(PyExc_TypeError, "roomy(dict)");
        return NULL;
    }
    PyObject *copy = _PyDict_NewPresized(PyDict_GET_SIZE(mapping) + ROOM);
    if (!copy)
        return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(mapping, &pos, &key, &value)) {
        if (PyDict_SetItem(copy, key, value) < 0) {
            Py_DECREF(copy);
            return NULL;
        }
    }
    return copy;
}

static PyObject *
fast_environ(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fast_environ(base, method, target, version, headers)");
        return NULL;
    }
    PyObject *base = args[0], *method = args[1], *target = args[2], *version = args[3], *headers = args[4];
    if (!PyDict_CheckExact(base) || !PyUnicode_CheckExact(target) || !PyList_CheckExact(headers) ||
        PyUnicode_KIND(target) != PyUnicode_1BYTE_KIND)
        Py_RETURN_NONE;
    PyObject *script_name = PyDict_GetItemWithError(base, K_SCRIPT_NAME);
    if (!script_name) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (!PyUnicode_CheckExact(script_name) || PyUnicode_GET_LENGTH(script_name) != 0)
        Py_RETURN_NONE;
    Py_ssize_t size = PyUnicode_GET_LENGTH(target);
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(target);
    if (size == 0 || text[0] != '/')
        Py_RETURN_NONE;
    Py_ssize_t question = -1;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_UCS1 c = text[i];
        if (c == '%' || c == '#')
            Py_RETURN_NONE;
        if (c == '?' && question < 0)
            question = i;
    }
    PyObject *environ = PyDict_Copy(base);
    if (!environ)
        return NULL;
    if (PyDict_SetItem(environ, K_REQUEST_METHOD, method) < 0 || PyDict_SetItem(environ, K_RAW_URI, target) < 0 ||
        PyDict_SetItem(environ, K_SERVER_PROTOCOL, version) < 0)
        goto failed;
    if (question < 0) {
        if (PyDict_SetItem(environ, K_PATH_INFO, target) < 0 || PyDict_SetItem(environ, K_QUERY_STRING, EMPTY) < 0)
            goto failed;
    } else if (set_slice(environ, K_PATH_INFO, target, 0, question) < 0 ||
               set_slice(environ, K_QUERY_STRING, target, question + 1, size) < 0) {
        goto failed;
    }
    Py_ssize_t count = PyList_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            goto in_doubt;
        PyObject *key = header_key(PyTuple_GET_ITEM(item, 0));
        if (!key) {
            if (PyErr_Occurred())
                goto failed;
            goto in_doubt;
        }
        int present = PyDict_Contains(environ, key);
        if (present != 0) {
            Py_DECREF(key);
            if (present < 0)
                goto failed;
            goto in_doubt; /* sent twice: Python joins the values */
        }
        int stored = PyDict_SetItem(environ, key, PyTuple_GET_ITEM(item, 1));
        Py_DECREF(key);
        if (stored < 0)
            goto failed;
    }
    PyObject *host = PyDict_GetItemWithError(environ, K_HTTP_HOST);
    if (host && PyUnicode_CheckExact(host) && PyUnicode_GET_LENGTH(host) > 0) {
        int split = split_host(environ, host);
        if (split < 0)
            goto failed;
        if (split == 0)
            goto in_doubt;
    } else if (host) {
        goto in_doubt;
    } else if (PyErr_Occurred()) {
        goto failed;
    }
    return environ;
in_doubt:
    Py_DECREF(environ);
    Py_RETURN_NONE;
failed:
    Py_DECREF(environ);
    return NULL;
}

/* "t=<micros>" into ``text`` (room for 32), as "t=%d" % micros; its length. By hand: snprintf's
 * machinery cost a third of the stamp. |micros| < 9e18, so its negation cannot overflow. */
static Py_ssize_t
stamp_text(char *text, long long micros)
{
    char digits[20];
    int count = 0;
    unsigned long long rest = micros < 0 ? (unsigned long long)(-micros) : (unsigned long long)micros;
    do {
        digits[count++] = (char)('0' + rest % 10);
        rest /= 10;
    } while (rest);
    Py_ssize_t size = 0;
    text[size++] = 't';
    text[size++] = '=';
    if (micros < 0)
        text[size++] = '-';
    while (count)
        text[size++] = digits[--count];
    return size;
}

static PyObject *
fast_stamp(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "fast_stamp(environ, seen, now)");
        return NULL;
    }
    PyObject *environ = args[0];
    if (!PyDict_CheckExact(environ) || !PyFloat_CheckExact(args[1]) || !PyFloat_CheckExact(args[2]))
        Py_RETURN_NONE;
    double seen = PyFloat_AS_DOUBLE(args[1]), now = PyFloat_AS_DOUBLE(args[2]);
    double micros = seen * 1e6;
    if (!(micros > -9e18 && micros < 9e18)) /* (NaN too): int() of it is Python's to judge */
        Py_RETURN_NONE;
    if (PyDict_GetItemWithError(environ, K_REQUEST_START))
        Py_RETURN_NONE;
    if (PyErr_Occurred())
        return NULL;
    char text[32];
    Py_ssize_t size = stamp_text(text, (long long)micros); /* truncated toward 0, as int() */
    PyObject *value = PyUnicode_FromStringAndSize(text, size);
    if (!value)
        return NULL;
    int failed = PyDict_SetItem(environ, K_REQUEST_START, value);
    Py_DECREF(value);
    double waited = now - seen;
    if (waited < 0.0)
        waited = 0.0;
    PyObject *queued = failed ? NULL : PyFloat_FromDouble(waited);
    if (queued && PyDict_SetItem(environ, K_QUEUE_TIME, queued) < 0)
        Py_CLEAR(queued);
    return queued;
}

/* has_any(mapping, keys) -> whether the dict holds any of the tuple's keys.
 *
 * Most requests carry none of the few keys a proxy rewrites the client with
 * (forwarded.TrustedPeers.forwarding_keys): one lookup each, where
 * ``mapping.keys().isdisjoint(keys)``, its reference, makes a view and an
 * iterator first. */
static PyObject *
has_any(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyDict_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "has_any(dict, tuple)");
        return NULL;
    }
    PyObject *keys = args[1];
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(keys); i++) {
        int found = PyDict_Contains(args[0], PyTuple_GET_ITEM(keys, i));
        if (found < 0)
            return NULL;
        if (found)
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"fast_environ", (PyCFunction)(void (*)(void))fast_environ, METH_FASTCALL,
     "fast_environ(base, method, target, version, headers) -> dict, or None in doubt"},
    {"roomy", (PyCFunction)roomy, METH_O, "roomy(dict) -> an equal dict, with room for a request's keys"},
    {"has_any", (PyCFunction)(void (*)(void))has_any, METH_FASTCALL,
     "has_any(dict, keys) -> whether the dict holds any of the tuple's keys"},
    {"fast_stamp", (PyCFunction)(void (*)(void))fast_stamp, METH_FASTCALL,
     "fast_stamp(environ, seen, now) -> queue time, or None in doubt"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.wsgi._environ",
    "The compiled environ builder (see environ.py: the Python one is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__environ(void)
{
    KEYS = PyDict_New();
    K_REQUEST_METHOD = PyUnicode_InternFromString("REQUEST_METHOD");
    K_RAW_URI = PyUnicode_InternFromString("RAW_URI");
    K_PATH_INFO = PyUnicode_InternFromString("PATH_INFO");
    K_QUERY_STRING = PyUnicode_InternFromString("QUERY_STRING");
    K_SERVER_PROTOCOL = PyUnicode_InternFromString("SERVER_PROTOCOL");
    K_SCRIPT_NAME = PyUnicode_InternFromString("SCRIPT_NAME");
    K_HTTP_HOST = PyUnicode_InternFromString("HTTP_HOST");
    K_SERVER_NAME = PyUnicode_InternFromString("SERVER_NAME");
    K_SERVER_PORT = PyUnicode_InternFromString("SERVER_PORT");
    K_REQUEST_START = PyUnicode_InternFromString("HTTP_X_REQUEST_START");
    K_QUEUE_TIME = PyUnicode_InternFromString("forkwsgi.queue_time");
    EMPTY = PyUnicode_New(0, 0);
    if (!K_REQUEST_START || !K_QUEUE_TIME || !KEYS || !K_REQUEST_METHOD || !K_RAW_URI || !K_PATH_INFO || !K_QUERY_STRING || !K_SERVER_PROTOCOL ||
        !K_SCRIPT_NAME || !K_HTTP_HOST || !K_SERVER_NAME || !K_SERVER_PORT || !EMPTY)
        return NULL;
    static const char *const special[][2] = {{"content-type", "CONTENT_TYPE"}, {"content-length", "CONTENT_LENGTH"}};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) {
        PyObject *name = PyUnicode_InternFromString(special[i][0]);
        PyObject *key = PyUnicode_InternFromString(special[i][1]);
        int failed = !name || !key || PyDict_SetItem(KEYS, name, key) < 0;
        Py_XDECREF(name);
        Py_XDECREF(key);
        if (failed)
            return NULL;
    }
    return PyModule_Create(&module);
}
