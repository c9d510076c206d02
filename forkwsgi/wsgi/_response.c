/* The compiled response writer (response.py: PythonResponse is the reference).
 *
 * Response is the twin of PythonResponse for what every request runs:
 * start_response, write, and the framing of the head and the body (decided
 * once, as the first body byte goes). An app that returns a list (or tuple)
 * of bytes is written with one allocation for the head and the body and one
 * call of send. Everything else a response can meet (a body already begun by
 * write(), an iterable, a file for sendfile) runs the reference's own
 * functions, given to bind() once: write_result, write_more and _send_file
 * are the Python ones, calling back into this type's write, finish and
 * _render_head. So the rules for streams and files exist once, and the
 * rules this file repeats (framing) are held equal to the reference by
 * tests/unit/test_response.py's differential property.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "structmember.h"

/* What bind() gives: the start readers, the app-error type, and the reference's methods this
 * type runs as its own for the less common results. */
static PyObject *READ_START, *PYTHON_READ_START, *INVALID_RESPONSE, *WRITE_RESULT, *WRITE_MORE, *SEND_FILE;
static PyObject *S_METHOD, *S_VERSION, *S_HEAD, *S_HTTP11, *S_WRITE, *S_WITH_TRACEBACK, *LAST_CHUNK, *EMPTY_BYTES,
    *EMPTY_STR;

typedef struct {
    PyObject_HEAD
    PyObject *send, *sendfile, *closing, *extra, *status, *headers, *fields, *length, *rest;
    int code;
    Py_ssize_t sent;
    char is_head, version11, keep_alive, app_closes, head_sent, chunked;
} Response;

static PyTypeObject ResponseType;

static int
no_body(int code)
{
    return (code >= 100 && code < 200) || code == 204 || code == 304;
}

/* ----- construction: Response(send, sendfile, request, keep_alive, extra, closing=None) */

static PyObject *
response_make(PyObject *const *args, PyObject *closing)
{
    PyObject *request = args[2];
    PyObject *method = PyObject_GetAttr(request, S_METHOD);
    if (!method)
        return NULL;
    int is_head = PyObject_RichCompareBool(method, S_HEAD, Py_EQ);
    Py_DECREF(method);
    PyObject *version = is_head < 0 ? NULL : PyObject_GetAttr(request, S_VERSION);
    if (!version)
        return NULL;
    int version11 = PyObject_RichCompareBool(version, S_HTTP11, Py_EQ);
    Py_DECREF(version);
    int keep_alive = version11 < 0 ? -1 : PyObject_IsTrue(args[3]);
    if (keep_alive < 0)
        return NULL;
    Response *self = PyObject_GC_New(Response, &ResponseType);
    if (!self)
        return NULL;
    Py_INCREF(args[0]);
    self->send = args[0];
    Py_INCREF(args[1]);
    self->sendfile = args[1];
    Py_INCREF(args[4]);
    self->extra = args[4];
    Py_XINCREF(closing);
    self->closing = closing;
    self->status = self->headers = self->rest = self->length = NULL;
    Py_INCREF(EMPTY_STR);
    self->fields = EMPTY_STR;
    self->code = 0;
    self->sent = 0;
    self->is_head = (char)is_head;
    self->version11 = (char)version11;
    self->keep_alive = (char)keep_alive;
    self->app_closes = self->head_sent = self->chunked = 0;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *response_new(PyTypeObject *type, PyObject *args, PyObject *kwargs);

/* The call every request makes, positional: no argument tuple. Keywords go the general way. */
static PyObject *
response_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!kwnames && (nargs == 5 || nargs == 6))
        return response_make(args, nargs == 6 ? args[5] : Py_None);
    PyObject *positional = PyTuple_New(nargs), *keywords = kwnames ? PyDict_New() : NULL, *made = NULL;
    if (!positional || (kwnames && !keywords))
        goto done;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(positional, i, args[i]);
    }
    for (Py_ssize_t k = 0; kwnames && k < PyTuple_GET_SIZE(kwnames); k++)
        if (PyDict_SetItem(keywords, PyTuple_GET_ITEM(kwnames, k), args[nargs + k]) < 0)
            goto done;
    made = response_new((PyTypeObject *)type, positional, keywords);
done:
    Py_XDECREF(positional);
    Py_XDECREF(keywords);
    return made;
}

static PyObject *
response_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *send, *sendfile, *request, *keep_alive, *extra, *closing = Py_None;
    static char *names[] = {"send", "sendfile", "request", "keep_alive", "extra", "closing", NULL};
    (void)type;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO|O:Response", names, &send, &sendfile, &request,
                                     &keep_alive, &extra, &closing))
        return NULL;
    PyObject *items[6] = {send, sendfile, request, keep_alive, extra, closing};
    return response_make(items, closing);
}

static int
response_traverse(Response *self, visitproc visit, void *arg)
{
    Py_VISIT(self->send);
    Py_VISIT(self->sendfile);
    Py_VISIT(self->closing);
    Py_VISIT(self->extra);
    Py_VISIT(self->status);
    Py_VISIT(self->headers);
    Py_VISIT(self->fields);
    Py_VISIT(self->length);
    Py_VISIT(self->rest);
    return 0;
}

static int
response_clear(Response *self)
{
    Py_CLEAR(self->send);
    Py_CLEAR(self->sendfile);
    Py_CLEAR(self->closing);
    Py_CLEAR(self->extra);
    Py_CLEAR(self->status);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->fields);
    Py_CLEAR(self->length);
    Py_CLEAR(self->rest);
    return 0;
}

static void
response_dealloc(Response *self)
{
    PyObject_GC_UnTrack(self);
    response_clear(self);
    PyObject_GC_Del(self);
}

/* ----- framing */

enum { NO_LENGTH = -1 };

/* What _render_head decides before it writes: the framing lines it adds to the app's. */
typedef struct {
    long long content_length; /* NO_LENGTH: none added */
    int chunked_line;
    const char *connection; /* "close", "keep-alive" or NULL */
} Framing;

/* The framing decision (PythonResponse._render_head, up to its bytes); -1 with an error set.
 * ``known`` is the body's whole length, or NO_LENGTH when it is not known yet. */
static int
decide(Response *self, long long known, Framing *framing)
{
    if (!self->status || self->status == Py_None) {
        PyErr_SetString(INVALID_RESPONSE, "the application did not call start_response");
        return -1;
    }
    if (self->app_closes)
        self->keep_alive = 0;
    else if (self->closing && self->closing != Py_None) {
        PyObject *answer = PyObject_CallNoArgs(self->closing);
        int closing = answer ? PyObject_IsTrue(answer) : -1;
        Py_XDECREF(answer);
        if (closing < 0)
            return -1;
        if (closing)
            self->keep_alive = 0;
    }
    framing->content_length = NO_LENGTH;
    framing->chunked_line = 0;
    int has_length = self->length && self->length != Py_None;
    if (self->is_head) {
        /* A HEAD response carries no body: its length is told only when known (and not 0, which an
         * app that leaves the body out of HEAD would claim wrongly). */
        if (!has_length && known > 0 && !no_body(self->code))
            framing->content_length = known;
    }
    else if (!has_length && !no_body(self->code)) {
        if (known != NO_LENGTH) {
            PyObject *length = PyLong_FromLongLong(known);
            if (!length)
                return -1;
            Py_XSETREF(self->length, length);
            framing->content_length = known;
        }
        else if (self->version11) {
            self->chunked = 1;
            framing->chunked_line = 1;
        }
        else
            self->keep_alive = 0; /* HTTP/1.0 without a length: the close ends the body */
    }
    framing->connection = !self->keep_alive ? "close" : !self->version11 ? "keep-alive" : NULL;
    self->head_sent = 1;
    return 0;
}

/* The framing lines as text (at most ~80 bytes); their length. */
static Py_ssize_t
framing_text(const Framing *framing, char *out)
{
    Py_ssize_t size = 0;
    if (framing->content_length != NO_LENGTH)
        size += sprintf(out + size, "Content-Length: %lld\r\n", framing->content_length);
    if (framing->chunked_line)
        size += sprintf(out + size, "Transfer-Encoding: chunked\r\n");
    if (framing->connection)
        size += sprintf(out + size, "Connection: %s\r\n", framing->connection);
    return size;
}

static int
one_byte_str(PyObject *text)
{
    return PyUnicode_CheckExact(text) && PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND;
}

/* The head's bytes followed by ``tail`` bytes of room the caller fills; NULL with an error set.
 * Text beyond Latin-1 (or not a str) goes the reference's way. */
static PyObject *
head_bytes(Response *self, const Framing *framing, Py_ssize_t tail)
{
    char lines[160];
    Py_ssize_t lines_size = framing_text(framing, lines);
    /* Held while the head is made: with --threads, the loop may set a timed-out status meanwhile. */
    PyObject *status = self->status, *fields = self->fields ? self->fields : Py_None, *extra = self->extra;
    PyObject *out;
    Py_INCREF(status);
    Py_INCREF(fields);
    Py_INCREF(extra);
    if (one_byte_str(status) && one_byte_str(fields) && one_byte_str(extra)) {
        Py_ssize_t status_size = PyUnicode_GET_LENGTH(status), fields_size = PyUnicode_GET_LENGTH(fields),
                   extra_size = PyUnicode_GET_LENGTH(extra);
        Py_ssize_t size = 9 + status_size + 2 + fields_size + extra_size + lines_size + 2;
        out = PyBytes_FromStringAndSize(NULL, size + tail);
        if (out) {
            char *at = PyBytes_AS_STRING(out);
            memcpy(at, "HTTP/1.1 ", 9);
            at += 9;
            memcpy(at, PyUnicode_1BYTE_DATA(status), status_size);
            at += status_size;
            memcpy(at, "\r\n", 2);
            at += 2;
            memcpy(at, PyUnicode_1BYTE_DATA(fields), fields_size);
            at += fields_size;
            memcpy(at, PyUnicode_1BYTE_DATA(extra), extra_size);
            at += extra_size;
            memcpy(at, lines, lines_size);
            at += lines_size;
            memcpy(at, "\r\n", 2);
        }
    }
    else { /* text beyond Latin-1 (or not a str): the reference's way, formatted, then encoded */
        PyObject *text = PyUnicode_FromFormat("HTTP/1.1 %S\r\n%S%S%s\r\n", status, fields, extra, lines);
        PyObject *head = text ? PyUnicode_AsLatin1String(text) : NULL;
        Py_XDECREF(text);
        out = head && tail ? PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(head) + tail) : head;
        if (out && out != head)
            memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head));
        if (out != head)
            Py_XDECREF(head);
    }
    Py_DECREF(status);
    Py_DECREF(fields);
    Py_DECREF(extra);
    return out;
}

/* How many of ``size`` body bytes go on the wire (PythonResponse._frame): -1 for none at all (HEAD, a
 * status without a body), else the count within Content-Length; -2 with an error set where the length
 * is not an int. The caller adds it to ``sent`` once the bytes are made (a head that cannot be encoded
 * sends none). */
static Py_ssize_t
frame_count(Response *self, Py_ssize_t size)
{
    if (self->is_head || no_body(self->code))
        return -1;
    if (self->length && self->length != Py_None) {
        int overflow = 0;
        long long length = PyLong_AsLongLongAndOverflow(self->length, &overflow);
        if (length == -1 && PyErr_Occurred())
            return -2;
        if (!overflow && size > length - self->sent)
            size = (Py_ssize_t)(length - self->sent);
    }
    return size;
}

/* The chunk's size line for ``count`` bytes ("%x\r\n"), 0 when the body is not chunked or empty. */
static int
chunk_line(Response *self, Py_ssize_t count, char *out)
{
    return self->chunked && count > 0 ? sprintf(out, "%zx\r\n", count) : 0;
}

/* ``head`` (may be NULL) then ``data``'s framed bytes, in one new bytes object. */
static PyObject *
framed(Response *self, const Framing *framing, const char *data, Py_ssize_t size)
{
    Py_ssize_t count = frame_count(self, size);
    if (count == -2)
        return NULL;
    char line[24];
    int line_size = chunk_line(self, count, line);
    Py_ssize_t body = count < 0 ? 0 : count + line_size + (line_size ? 2 : 0);
    PyObject *out;
    char *at;
    if (framing) {
        out = head_bytes(self, framing, body);
        if (!out)
            return NULL;
        at = PyBytes_AS_STRING(out) + PyBytes_GET_SIZE(out) - body;
    }
    else {
        if (body == 0) {
            Py_INCREF(EMPTY_BYTES);
            return EMPTY_BYTES;
        }
        out = PyBytes_FromStringAndSize(NULL, body);
        if (!out)
            return NULL;
        at = PyBytes_AS_STRING(out);
    }
    if (count > 0)
        self->sent += count;
    if (body) {
        memcpy(at, line, line_size);
        memcpy(at + line_size, data, count);
        if (line_size)
            memcpy(at + line_size + count, "\r\n", 2);
    }
    return out;
}

/* send(data, wait) (or send(data) when ``wait`` is NULL, as _send_file does); -1 with an error set. */
static int
call_send(Response *self, PyObject *data, PyObject *wait)
{
    PyObject *args[2] = {data, wait};
    PyObject *result = PyObject_Vectorcall(self->send, args, wait ? 2 : 1, NULL);
    Py_XDECREF(result);
    return result ? 0 : -1;
}

static long long
known_length(PyObject *value, int *error)
{
    *error = 0;
    if (value == Py_None)
        return NO_LENGTH;
    long long known = PyLong_AsLongLong(value);
    if (known == -1 && PyErr_Occurred())
        *error = 1;
    return known;
}

/* ----- the methods */

/* Unpack positional-or-keyword arguments into ``out`` (names in order, the first ``required`` of them
 * required); -1 with TypeError set. */
static int
unpack(const char *what, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names,
       int count, int required, PyObject **out)
{
    if (nargs > count)
        goto bad;
    for (int i = 0; i < count; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        int found = 0;
        for (int i = 0; i < count && !found; i++)
            if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, k), names[i]) == 0) {
                if (out[i])
                    goto bad;
                out[i] = args[nargs + k];
                found = 1;
            }
        if (!found)
            goto bad;
    }
    for (int i = 0; i < required; i++)
        if (!out[i])
            goto bad;
    return 0;
bad:
    PyErr_Format(PyExc_TypeError, "bad arguments to %s", what);
    return -1;
}

static PyObject *
response_start_response(Response *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"status", "headers", "exc_info"};
    PyObject *arg[3];
    if (unpack("start_response(status, headers, exc_info=None)", args, nargs, kwnames, names, 3, 2, arg) < 0)
        return NULL;
    PyObject *status = arg[0], *headers = arg[1], *exc_info = arg[2];
    if (exc_info && exc_info != Py_None) {
        if (self->head_sent) { /* too late to replace the head: the error goes on up */
            PyObject *exc = PySequence_GetItem(exc_info, 1);
            PyObject *tb = exc ? PySequence_GetItem(exc_info, 2) : NULL;
            PyObject *raised = tb ? PyObject_CallMethodOneArg(exc, S_WITH_TRACEBACK, tb) : NULL;
            if (raised)
                PyErr_SetObject((PyObject *)Py_TYPE(raised), raised);
            Py_XDECREF(exc);
            Py_XDECREF(tb);
            Py_XDECREF(raised);
            return NULL;
        }
    }
    else if (self->status && self->status != Py_None) {
        PyErr_SetString(PyExc_AssertionError, "start_response called a second time without exc_info");
        return NULL;
    }
    PyObject *pair[2] = {status, headers};
    PyObject *read = PyObject_Vectorcall(READ_START, pair, 2, NULL);
    if (read == Py_None) {
        Py_DECREF(read);
        read = PyObject_Vectorcall(PYTHON_READ_START, pair, 2, NULL);
    }
    if (!read)
        return NULL;
    if (!PyTuple_CheckExact(read) || PyTuple_GET_SIZE(read) != 4) {
        Py_DECREF(read);
        PyErr_SetString(PyExc_TypeError, "read_start must give a 4-tuple");
        return NULL;
    }
    long code = PyLong_AsLong(PyTuple_GET_ITEM(read, 0));
    int closes = code == -1 && PyErr_Occurred() ? -1 : PyObject_IsTrue(PyTuple_GET_ITEM(read, 3));
    if (closes < 0) {
        Py_DECREF(read);
        return NULL;
    }
    self->code = (int)code;
    Py_INCREF(PyTuple_GET_ITEM(read, 1));
    Py_XSETREF(self->fields, PyTuple_GET_ITEM(read, 1));
    Py_INCREF(PyTuple_GET_ITEM(read, 2));
    Py_XSETREF(self->length, PyTuple_GET_ITEM(read, 2));
    self->app_closes = (char)closes;
    Py_DECREF(read);
    Py_INCREF(status);
    Py_XSETREF(self->status, status);
    Py_INCREF(headers);
    Py_XSETREF(self->headers, headers);
    return PyObject_GetAttr((PyObject *)self, S_WRITE);
}

static PyObject *
not_bytes(PyObject *item)
{
    PyErr_Format(INVALID_RESPONSE, "response body must be bytes, got %s", Py_TYPE(item)->tp_name);
    return NULL;
}

static PyObject *
response_write(Response *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"data", "wait"};
    PyObject *arg[2];
    if (unpack("write(data, wait=True)", args, nargs, kwnames, names, 2, 1, arg) < 0)
        return NULL;
    PyObject *data = arg[0], *wait = arg[1] ? arg[1] : Py_True;
    if (!PyBytes_CheckExact(data))
        return not_bytes(data);
    if (PyBytes_GET_SIZE(data) == 0)
        Py_RETURN_NONE;
    PyObject *out;
    if (!self->head_sent) {
        Framing framing;
        if (decide(self, NO_LENGTH, &framing) < 0)
            return NULL;
        out = framed(self, &framing, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    }
    else
        out = framed(self, NULL, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    if (!out)
        return NULL;
    int failed = PyBytes_GET_SIZE(out) ? call_send(self, out, wait) : 0;
    Py_DECREF(out);
    if (failed)
        return NULL;
    Py_RETURN_NONE;
}

/* End the message (PythonResponse.finish); -1 with an error set. */
static int
finish(Response *self)
{
    if (!self->head_sent) {
        Framing framing;
        if (decide(self, 0, &framing) < 0)
            return -1;
        PyObject *head = head_bytes(self, &framing, 0);
        int failed = head ? call_send(self, head, Py_False) : -1;
        Py_XDECREF(head);
        if (failed)
            return -1;
    }
    else if (self->chunked && call_send(self, LAST_CHUNK, Py_False) < 0)
        return -1;
    if (self->length && self->length != Py_None && !self->is_head && !no_body(self->code)) {
        PyObject *sent = PyLong_FromSsize_t(self->sent);
        int short_body = sent ? PyObject_RichCompareBool(sent, self->length, Py_LT) : -1;
        Py_XDECREF(sent);
        if (short_body < 0)
            return -1;
        if (short_body)
            self->keep_alive = 0; /* a body shorter than its Content-Length: the close tells the client */
    }
    return 0;
}

static PyObject *
response_finish(Response *self, PyObject *unused)
{
    (void)unused;
    if (finish(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* A list or tuple of bytes before anything was sent: joined behind the head, sent in one call. */
static PyObject *
write_list(Response *self, PyObject *result, PyObject *wait)
{
    /* The body is taken (one item, or all joined) before anything else runs: deciding the framing
     * may call back into Python, and the app's list is not ours to trust meanwhile. */
    Py_ssize_t count = PySequence_Fast_GET_SIZE(result), size = 0;
    PyObject **items = PySequence_Fast_ITEMS(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!PyBytes_CheckExact(items[i]))
            return not_bytes(items[i]);
        size += PyBytes_GET_SIZE(items[i]);
    }
    PyObject *body;
    if (count == 1) {
        body = items[0];
        Py_INCREF(body);
    }
    else {
        body = PyBytes_FromStringAndSize(NULL, size);
        if (!body)
            return NULL;
        char *at = PyBytes_AS_STRING(body);
        for (Py_ssize_t i = 0; i < count; i++) {
            memcpy(at, PyBytes_AS_STRING(items[i]), PyBytes_GET_SIZE(items[i]));
            at += PyBytes_GET_SIZE(items[i]);
        }
    }
    Framing framing;
    PyObject *out = decide(self, size, &framing) < 0 ? NULL : framed(self, &framing, PyBytes_AS_STRING(body), size);
    Py_DECREF(body);
    if (!out)
        return NULL;
    int failed = call_send(self, out, wait);
    Py_DECREF(out);
    if (failed || finish(self) < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static PyObject *
response_write_result(Response *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"result", "room"};
    PyObject *arg[2];
    if (unpack("write_result(result, room=None)", args, nargs, kwnames, names, 2, 1, arg) < 0)
        return NULL;
    PyObject *result = arg[0], *room = arg[1] ? arg[1] : Py_None;
    if ((PyList_CheckExact(result) || PyTuple_CheckExact(result)) && !self->head_sent)
        return write_list(self, result, room == Py_None ? Py_True : Py_False);
    PyObject *call[3] = {(PyObject *)self, result, room};
    return PyObject_Vectorcall(WRITE_RESULT, call, 3, NULL); /* the reference's, for the rest */
}

static PyObject *
response_write_more(Response *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"room"};
    PyObject *arg[1];
    if (unpack("write_more(room=None)", args, nargs, kwnames, names, 1, 0, arg) < 0)
        return NULL;
    PyObject *call[2] = {(PyObject *)self, arg[0] ? arg[0] : Py_None};
    return PyObject_Vectorcall(WRITE_MORE, call, 2, NULL);
}

static PyObject *
response_send_file(Response *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_send_file(fd, offset, size)");
        return NULL;
    }
    PyObject *call[4] = {(PyObject *)self, args[0], args[1], args[2]};
    return PyObject_Vectorcall(SEND_FILE, call, 4, NULL);
}

static PyObject *
response_render_head(Response *self, PyObject *known)
{
    int error;
    long long length = known_length(known, &error);
    Framing framing;
    if (error || decide(self, length, &framing) < 0)
        return NULL;
    return head_bytes(self, &framing, 0);
}

static PyObject *
response_frame(Response *self, PyObject *data)
{
    if (!PyBytes_CheckExact(data))
        return not_bytes(data);
    return framed(self, NULL, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
}

static PyMethodDef response_methods[] = {
    {"start_response", (PyCFunction)(void (*)(void))response_start_response, METH_FASTCALL | METH_KEYWORDS,
     "PEP 3333's start_response(status, headers, exc_info=None); returns write."},
    {"write", (PyCFunction)(void (*)(void))response_write, METH_FASTCALL | METH_KEYWORDS,
     "write(data, wait=True): the app's write(), and each chunk of a streamed body."},
    {"write_result", (PyCFunction)(void (*)(void))response_write_result, METH_FASTCALL | METH_KEYWORDS,
     "write_result(result, room=None): send the app's return value, then finish; True if suspended."},
    {"write_more", (PyCFunction)(void (*)(void))response_write_more, METH_FASTCALL | METH_KEYWORDS,
     "write_more(room=None): go on with a suspended body; True if the client is behind again."},
    {"finish", (PyCFunction)response_finish, METH_NOARGS, "End the message."},
    {"_send_file", (PyCFunction)(void (*)(void))response_send_file, METH_FASTCALL,
     "_send_file(fd, offset, size): the head, then the file by sendfile."},
    {"_render_head", (PyCFunction)response_render_head, METH_O,
     "_render_head(known_length): decide the framing; the head's bytes."},
    {"_frame", (PyCFunction)response_frame, METH_O, "_frame(data): the wire bytes for body data."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef response_members[] = {
    {"send", T_OBJECT, offsetof(Response, send), 0, NULL},
    {"sendfile", T_OBJECT, offsetof(Response, sendfile), 0, NULL},
    {"closing", T_OBJECT, offsetof(Response, closing), 0, NULL},
    {"extra", T_OBJECT, offsetof(Response, extra), 0, NULL},
    {"status", T_OBJECT, offsetof(Response, status), 0, NULL},
    {"headers", T_OBJECT, offsetof(Response, headers), 0, NULL},
    {"fields", T_OBJECT, offsetof(Response, fields), 0, NULL},
    {"length", T_OBJECT, offsetof(Response, length), 0, NULL},
    {"rest", T_OBJECT, offsetof(Response, rest), 0, NULL},
    {"code", T_INT, offsetof(Response, code), 0, NULL},
    {"sent", T_PYSSIZET, offsetof(Response, sent), 0, NULL},
    {"is_head", T_BOOL, offsetof(Response, is_head), 0, NULL},
    {"version11", T_BOOL, offsetof(Response, version11), 0, NULL},
    {"keep_alive", T_BOOL, offsetof(Response, keep_alive), 0, NULL},
    {"app_closes", T_BOOL, offsetof(Response, app_closes), 0, NULL},
    {"head_sent", T_BOOL, offsetof(Response, head_sent), 0, NULL},
    {"chunked", T_BOOL, offsetof(Response, chunked), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ResponseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "forkwsgi.wsgi._response.Response",
    .tp_doc = "One request's response: start_response, write(), and framing on the wire (the twin of "
              "response.PythonResponse).",
    .tp_basicsize = sizeof(Response),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = response_new,
    .tp_vectorcall = response_vectorcall,
    .tp_dealloc = (destructor)response_dealloc,
    .tp_traverse = (traverseproc)response_traverse,
    .tp_clear = (inquiry)response_clear,
    .tp_methods = response_methods,
    .tp_members = response_members,
};

/* bind(read_start, python_read_start, InvalidResponse, write_result, write_more, send_file) -> Response:
 * what this type is given by response.py, once, before it is used. */
static PyObject *
bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "bind(read_start, python_read_start, InvalidResponse, write_result, write_more, send_file)");
        return NULL;
    }
    PyObject **slots[6] = {&READ_START, &PYTHON_READ_START, &INVALID_RESPONSE, &WRITE_RESULT, &WRITE_MORE,
                           &SEND_FILE};
    for (int i = 0; i < 6; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    Py_INCREF(&ResponseType);
    return (PyObject *)&ResponseType;
}

static PyMethodDef methods[] = {
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "bind(read_start, python_read_start, InvalidResponse, write_result, write_more, send_file) -> Response"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.wsgi._response",
    "The compiled response writer (response.py's PythonResponse is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__response(void)
{
    S_METHOD = PyUnicode_InternFromString("method");
    S_VERSION = PyUnicode_InternFromString("version");
    S_HEAD = PyUnicode_InternFromString("HEAD");
    S_HTTP11 = PyUnicode_InternFromString("HTTP/1.1");
    S_WRITE = PyUnicode_InternFromString("write");
    S_WITH_TRACEBACK = PyUnicode_InternFromString("with_traceback");
    LAST_CHUNK = PyBytes_FromString("0\r\n\r\n");
    EMPTY_BYTES = PyBytes_FromStringAndSize(NULL, 0);
    EMPTY_STR = PyUnicode_New(0, 0);
    if (!S_METHOD || !S_VERSION || !S_HEAD || !S_HTTP11 || !S_WRITE || !S_WITH_TRACEBACK || !LAST_CHUNK ||
        !EMPTY_BYTES || !EMPTY_STR || PyType_Ready(&ResponseType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
