/* The compiled head scanner: scan.py's python_scan_head, in C, for speed.
 *
 * One function, scan_head(), with the same arguments and the same answers as
 * the Python one: it reads the lines of a complete head in one pass over its
 * bytes and returns what they say, or None at the first doubt. It never gives
 * a verdict: on None the parser's line-by-line path reads the same bytes and
 * gives it (400, 414, 431, 501, 505...). tests/unit/test_scan.py and the
 * parser's property tests hold both implementations to the same answers.
 * whole_head() does the same for a buffer that is exactly one request with
 * plain framing, and makes the Request (the parser is its reference).
 *
 * What it accepts: a request line "METHOD SP target SP HTTP/1.x" whose method
 * is a token and whose target is printable ASCII in origin-form ("/...") or
 * "*" for OPTIONS; field lines "token:value" whose bytes are HTAB, SP, visible
 * ASCII or obs-text; lines within their size limits, no more fields than
 * allowed. Everything else is a doubt.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

static unsigned char TCHAR[256];   /* RFC 9110 tchar */
static unsigned char FIELD[256];   /* bytes allowed in a field line: HTAB, SP..~, 0x80..0xff */
static PyObject *HTTP11, *HTTP10, *GET, *HEAD, *POST;

static void
fill_tables(void)
{
    const char *extra = "!#$%&'*+-.^_`|~";
    for (int c = '0'; c <= '9'; c++) TCHAR[c] = 1;
    for (int c = 'a'; c <= 'z'; c++) TCHAR[c] = 1;
    for (int c = 'A'; c <= 'Z'; c++) TCHAR[c] = 1;
    for (const char *p = extra; *p; p++) TCHAR[(unsigned char)*p] = 1;
    FIELD['\t'] = 1;
    for (int c = 0x20; c < 0x7f; c++) FIELD[c] = 1;
    for (int c = 0x80; c < 0x100; c++) FIELD[c] = 1;
}

static inline unsigned char
ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static inline PyObject *
latin1(const unsigned char *p, Py_ssize_t n)
{
    return PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, p, n);
}

/* The same for bytes known to be ASCII: no second pass to find the widest character. */
static inline PyObject *
ascii(const unsigned char *p, Py_ssize_t n)
{
    PyObject *text = PyUnicode_New(n, 127);
    if (text)
        memcpy(PyUnicode_1BYTE_DATA(text), p, n);
    return text;
}

/* Field names of the standards and of common proxies, browsers and tracers, lower-case. A name in
 * this fixed list becomes one shared str, its hash computed once, rather than a new str each head;
 * its value is read anew every time. */
static const char *const KNOWN_NAMES[] = {
    "host", "user-agent", "accept", "accept-language", "accept-encoding", "accept-charset", "cookie",
    "connection", "keep-alive", "content-type", "content-length", "transfer-encoding", "expect", "upgrade",
    "te", "referer", "origin", "authorization", "cache-control", "pragma", "range", "if-none-match",
    "if-modified-since", "if-match", "if-unmodified-since", "dnt", "upgrade-insecure-requests",
    "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip",
    "x-request-id", "x-request-start", "x-amzn-trace-id", "x-requested-with", "x-csrftoken", "forwarded",
    "via", "traceparent", "tracestate", "baggage", "priority", "sec-fetch-site", "sec-fetch-mode",
    "sec-fetch-dest", "sec-fetch-user", "sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform",
    "proxy-connection", "content-encoding", NULL,
};
#define KNOWN_NAME_MAX 32 /* longer names are never looked up */
#define PER_LENGTH 8       /* known names of one length, at most (checked as the table is built) */
static PyObject *KNOWN_TEXT[sizeof KNOWN_NAMES / sizeof KNOWN_NAMES[0]];
static signed char BY_LENGTH[KNOWN_NAME_MAX + 1][PER_LENGTH]; /* indexes into KNOWN_NAMES, -1 after the last */

static int
fill_known_names(void)
{
    memset(BY_LENGTH, -1, sizeof BY_LENGTH);
    for (int i = 0; KNOWN_NAMES[i]; i++) {
        size_t n = strlen(KNOWN_NAMES[i]);
        int slot = 0;
        while (slot < PER_LENGTH && BY_LENGTH[n][slot] >= 0)
            slot++;
        if (n > KNOWN_NAME_MAX || slot == PER_LENGTH) {
            PyErr_SetString(PyExc_SystemError, "_speedups: the known field names do not fit their table");
            return -1;
        }
        BY_LENGTH[n][slot] = (signed char)i;
        if (!(KNOWN_TEXT[i] = PyUnicode_InternFromString(KNOWN_NAMES[i])))
            return -1;
    }
    return 0;
}

/* The shared str of a known lower-case name (a new reference), or NULL if it is not one. */
static PyObject *
known_name(const unsigned char *lower, Py_ssize_t n)
{
    if (n > KNOWN_NAME_MAX)
        return NULL;
    for (int slot = 0; slot < PER_LENGTH && BY_LENGTH[n][slot] >= 0; slot++) {
        int i = BY_LENGTH[n][slot];
        if (memcmp(KNOWN_NAMES[i], lower, n) == 0) {
            Py_INCREF(KNOWN_TEXT[i]);
            return KNOWN_TEXT[i];
        }
    }
    return NULL;
}

/* The end of the line starting at p (the CR of its CRLF, or stop), or NULL for a stray CR, LF or
 * a byte no field line may hold. *high gets the line's bytes OR-ed: 0x80 set if any is past ASCII. */
static const unsigned char *
line_end(const unsigned char *p, const unsigned char *stop, unsigned char *high)
{
    /* Eight bytes at a time while none is below 0x20 (CR, LF, HTAB, the other controls) or 0x7f;
     * a word holding one goes byte by byte, from where the table decides. */
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t seen_words = 0;
    while (stop - p >= 8) {
        uint64_t word, del;
        memcpy(&word, p, 8);
        del = word ^ (ones * 0x7f);
        if (((word - ones * 0x20) & ~word & highs) | ((del - ones) & ~del & highs))
            break;
        seen_words |= word;
        p += 8;
    }
    unsigned char seen = seen_words & highs ? 0x80 : 0;
    while (p < stop && FIELD[*p])
        seen |= *p++;
    *high = seen;
    if (p == stop)
        return p;
    if (*p == '\r' && p + 1 < stop && p[1] == '\n')
        return p;
    return NULL;
}

static PyObject *
method_text(const unsigned char *p, Py_ssize_t n)
{
    PyObject *known = NULL;
    if (n == 3 && memcmp(p, "GET", 3) == 0) known = GET;
    else if (n == 4 && memcmp(p, "POST", 4) == 0) known = POST;
    else if (n == 4 && memcmp(p, "HEAD", 4) == 0) known = HEAD;
    if (known) {
        Py_INCREF(known);
        return known;
    }
    return ascii(p, n); /* (a token: ASCII) */
}

/* (method, target, version) of the request line [p, e), or Py_None for a doubt. */
static PyObject *
request_line(const unsigned char *p, const unsigned char *e)
{
    const unsigned char *m = p, *t, *v;
    while (m < e && TCHAR[*m]) m++;
    if (m == p || m == e || *m != ' ')
        Py_RETURN_NONE;
    t = m + 1;
    v = t;
    while (v < e && *v > 0x20 && *v < 0x7f) v++;
    if (v == t || v == e || *v != ' ')
        Py_RETURN_NONE;
    v++;
    if (e - v != 8 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '1' && v[7] != '0'))
        Py_RETURN_NONE;
    Py_ssize_t method_len = m - p;
    if (*t == '/') {
        if (method_len == 7 && memcmp(p, "CONNECT", 7) == 0)
            Py_RETURN_NONE;
    }
    else if (!(v - t == 2 && *t == '*' && method_len == 7 && memcmp(p, "OPTIONS", 7) == 0))
        Py_RETURN_NONE;  /* absolute-form and the rest: the Python path judges them */
    PyObject *method = method_text(p, method_len);
    if (!method)
        return NULL;
    PyObject *target = ascii(t, v - 1 - t); /* (0x21..0x7e, checked above) */
    if (!target) {
        Py_DECREF(method);
        return NULL;
    }
    PyObject *start = PyTuple_New(3);
    if (!start) {
        Py_DECREF(method);
        Py_DECREF(target);
        return NULL;
    }
    PyObject *version = v[7] == '1' ? HTTP11 : HTTP10;
    Py_INCREF(version);
    PyTuple_SET_ITEM(start, 0, method);
    PyTuple_SET_ITEM(start, 1, target);
    PyTuple_SET_ITEM(start, 2, version);
    return start;
}

/* (lower-case name, value without OWS) of the field line [p, e), or Py_None for a doubt. ``high``:
 * the line's bytes OR-ed (line_end), so that an ASCII value is copied without a second look. */
static PyObject *
field_line(const unsigned char *p, const unsigned char *e, unsigned char high)
{
    const unsigned char *colon = p;
    while (colon < e && TCHAR[*colon]) colon++;
    if (colon == p || colon == e || *colon != ':')
        Py_RETURN_NONE;
    Py_ssize_t name_len = colon - p;
    unsigned char lower[KNOWN_NAME_MAX];
    PyObject *name;
    if (name_len <= KNOWN_NAME_MAX) {  /* lowered once: looked up, else copied */
        for (Py_ssize_t i = 0; i < name_len; i++)
            lower[i] = ascii_lower(p[i]);
        name = known_name(lower, name_len);
        if (!name)
            name = ascii(lower, name_len);
    }
    else if ((name = PyUnicode_New(name_len, 127))) {
        Py_UCS1 *text = PyUnicode_1BYTE_DATA(name);
        for (Py_ssize_t i = 0; i < name_len; i++)
            text[i] = ascii_lower(p[i]);
    }
    if (!name)
        return NULL;
    const unsigned char *v = colon + 1, *w = e;
    while (v < w && (*v == ' ' || *v == '\t')) v++;
    while (w > v && (w[-1] == ' ' || w[-1] == '\t')) w--;
    PyObject *value = high & 0x80 ? latin1(v, w - v) : ascii(v, w - v);
    if (!value) {
        Py_DECREF(name);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (!pair) {
        Py_DECREF(name);
        Py_DECREF(value);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, name);
    PyTuple_SET_ITEM(pair, 1, value);
    return pair;
}

/* The lines of [p, stop): the request line first if need_request_line. 1 with *start_line (a new
 * reference: the tuple, or Py_None) and *headers (a new list) set; 0 for a doubt; -1 on an error. */
static int
scan_lines(const unsigned char *p, const unsigned char *stop, int need_request_line, Py_ssize_t max_fields,
           Py_ssize_t field_size, Py_ssize_t request_line_size, PyObject **start_line, PyObject **headers)
{
    PyObject *line = Py_None, *list = NULL;
    Py_INCREF(Py_None);
    if (need_request_line) {
        unsigned char high;
        const unsigned char *e = p < stop ? line_end(p, stop, &high) : NULL;
        if (!e || e - p > request_line_size)
            goto in_doubt;
        Py_DECREF(line);
        if (!(line = request_line(p, e)))
            return -1;
        if (line == Py_None)
            goto in_doubt;
        if (e == stop)
            goto lines_done;
        p = e + 2;
        if (p == stop)  /* a CRLF and nothing after it: an empty line the Python split would hold */
            goto in_doubt;
    }
    if (!(list = PyList_New(0)))
        goto failed;
    while (p < stop) {
        unsigned char high;
        const unsigned char *e = line_end(p, stop, &high);
        if (!e || e - p > field_size || PyList_GET_SIZE(list) >= max_fields)
            goto in_doubt;
        PyObject *pair = field_line(p, e, high);
        if (!pair)
            goto failed;
        if (pair == Py_None) {
            Py_DECREF(pair);
            goto in_doubt;
        }
        int appended = PyList_Append(list, pair);
        Py_DECREF(pair);
        if (appended < 0)
            goto failed;
        if (e == stop)
            break;
        p = e + 2;
        if (p == stop)  /* an empty line before the end: the Python split would hold it; doubt */
            goto in_doubt;
    }
lines_done:
    if (!list && !(list = PyList_New(0)))
        goto failed;
    *start_line = line;
    *headers = list;
    return 1;
in_doubt:
    Py_DECREF(line);
    Py_XDECREF(list);
    return 0;
failed:
    Py_DECREF(line);
    Py_XDECREF(list);
    return -1;
}

/* scan_head(buf, start, end, need_request_line, max_fields, field_size, request_line_size)
 *
 * buf[start:end] holds the head's remaining lines, CRLF between them (end is where the head's
 * CRLFCRLF starts). Returns (request line tuple or None, [(name, value), ...]), or None when in
 * doubt. */
static PyObject *
scan_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "scan_head takes 7 arguments");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t end = PyLong_AsSsize_t(args[2]);
    int need_request_line = PyObject_IsTrue(args[3]);
    Py_ssize_t max_fields = PyLong_AsSsize_t(args[4]);
    Py_ssize_t field_size = PyLong_AsSsize_t(args[5]);
    Py_ssize_t request_line_size = PyLong_AsSsize_t(args[6]);
    if (PyErr_Occurred() || need_request_line < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = NULL, *start_line, *headers;
    if (start < 0 || end > view.len) {
        PyErr_SetString(PyExc_ValueError, "scan_head: range outside the buffer");
        goto done;
    }
    const unsigned char *p = (const unsigned char *)view.buf + start;
    const unsigned char *stop = (const unsigned char *)view.buf + (end > start ? end : start);
    int found = scan_lines(p, stop, need_request_line, max_fields, field_size, request_line_size,
                           &start_line, &headers);
    if (found > 0) {
        result = PyTuple_Pack(2, start_line, headers);
        Py_DECREF(start_line);
        Py_DECREF(headers);
    }
    else if (found == 0) {
        result = Py_None;
        Py_INCREF(result);
    }
done:
    PyBuffer_Release(&view);
    return result;
}

/* ----- a whole request in one read (parser.py: the line-by-line path and head.apply_framing are
 * the reference) */

/* Whether text is ``lower`` in any case (ASCII letters). */
static int
equal_lower(const Py_UCS1 *text, Py_ssize_t size, const char *lower)
{
    Py_ssize_t i = 0;
    for (; i < size && lower[i]; i++)
        if (ascii_lower(text[i]) != (unsigned char)lower[i])
            return 0;
    return i == size && !lower[i];
}

static PyObject *HOST, *CONNECTION, *CONTENT_LENGTH, *TRANSFER_ENCODING, *EXPECT, *UPGRADE, *ZERO;

/* What the framing fields of ``headers`` say, where they say it plainly: 1 with *keep_alive and
 * *empty_length (Content-Length: 0) set, 0 for anything else (a body, a conflict, an option list,
 * an expectation, an upgrade): apply_framing judges those. */
static int
plain_framing(PyObject *headers, int http11, int *keep_alive, int *empty_length)
{
    int hosts = 0, connections = 0;
    *keep_alive = http11;
    *empty_length = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (name == HOST)
            hosts++;
        else if (name == CONNECTION) {
            if (connections++ || PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND)
                return 0;
            const Py_UCS1 *text = PyUnicode_1BYTE_DATA(value);
            Py_ssize_t size = PyUnicode_GET_LENGTH(value);
            if (equal_lower(text, size, "close"))
                *keep_alive = 0;
            else if (equal_lower(text, size, "keep-alive"))
                *keep_alive = 1;
            else
                return 0;
        }
        else if (name == CONTENT_LENGTH) {
            if (*empty_length || PyUnicode_GET_LENGTH(value) != 1 || PyUnicode_READ_CHAR(value, 0) != '0')
                return 0;
            *empty_length = 1;
        }
        else if (name == TRANSFER_ENCODING || name == EXPECT || name == UPGRADE)
            return 0;
    }
    return http11 ? hosts == 1 : hosts <= 1;
}

/* The fields of head.Request, in the order of its __slots__ (and of its __init__). */
#define REQUEST_FIELDS 9
static const char *const REQUEST_FIELD_NAMES[REQUEST_FIELDS] = {
    "method", "target", "version", "headers", "content_length", "chunked", "keep_alive", "expect_continue", "body"};
static PyObject *REQUEST_FIELD_TEXT[REQUEST_FIELDS];

/* Where each field of the request type lives in its objects (its __slots__), found once per type:
 * stored there directly, a field costs a store, not an attribute lookup and a call. A type whose
 * fields are not slots (head.Request compiled by mypyc, its fields native members behind
 * descriptors) is called instead (REQUEST_CALLED). */
static PyTypeObject *REQUEST_TYPE;
static Py_ssize_t REQUEST_OFFSET[REQUEST_FIELDS];
static int REQUEST_CALLED;

static int
find_request_fields(PyTypeObject *type)
{
    int slots = 0;
    for (int i = 0; i < REQUEST_FIELDS; i++) {
        PyObject *descr = PyObject_GetAttr((PyObject *)type, REQUEST_FIELD_TEXT[i]);
        if (!descr)
            return -1;
        if (Py_IS_TYPE(descr, &PyMemberDescr_Type) && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX) {
            REQUEST_OFFSET[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
            slots++;
        }
        Py_DECREF(descr);
    }
    if (slots != 0 && slots != REQUEST_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "whole_head: the request type has some of its fields in slots, not all");
        return -1;
    }
    REQUEST_CALLED = slots == 0;
    Py_INCREF(type);
    Py_XSETREF(REQUEST_TYPE, type);
    return 0;
}

/* A request made by calling its type with the first four fields: its __init__ sets the others as a
 * head without framing fields has them (no length, no body, keep-alive for HTTP/1.1, nothing
 * expected), and only a field that differs from that is set after. */
static PyObject *
call_request(PyObject *request_type, PyObject *const *values)
{
    PyObject *request = PyObject_Vectorcall(request_type, values, 4, NULL);
    if (!request)
        return NULL;
    /* (the scanner's version is one of its two interned strs; a field compared wrongly is only set) */
    PyObject *usual[REQUEST_FIELDS - 4] = {Py_None, Py_False, values[2] == HTTP11 ? Py_True : Py_False, Py_False,
                                           Py_None};
    for (int i = 4; i < REQUEST_FIELDS; i++) {
        if (values[i] != usual[i - 4] && PyObject_SetAttr(request, REQUEST_FIELD_TEXT[i], values[i]) < 0) {
            Py_DECREF(request);
            return NULL;
        }
    }
    return request;
}

/* A request of ``request_type`` (head.Request) with these values, every field set, made without a
 * call of its __init__ (which costs more than the scan of a short head) where its fields are slots. */
static PyObject *
new_request(PyObject *request_type, PyObject *const *values)
{
    if (!PyType_Check(request_type)) {
        PyErr_SetString(PyExc_TypeError, "whole_head: the request type is not a type");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)request_type;
    if (type != REQUEST_TYPE && find_request_fields(type) < 0)
        return NULL;
    if (REQUEST_CALLED)
        return call_request(request_type, values);
    PyObject *request = type->tp_alloc(type, 0);
    if (!request)
        return NULL;
    for (int i = 0; i < REQUEST_FIELDS; i++) {
        Py_INCREF(values[i]);
        *(PyObject **)((char *)request + REQUEST_OFFSET[i]) = values[i];
    }
    return request;
}

/* whole_head(buf, request_type, max_fields, field_size, request_line_size)
 *
 * The request when buf holds exactly one head and nothing else (no body, nothing pipelined) that
 * the scanner reads at once and whose framing is plain; None otherwise, and the parser reads buf
 * as it would have. */
static PyObject *
whole_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "whole_head takes 5 arguments");
        return NULL;
    }
    Py_ssize_t max_fields = PyLong_AsSsize_t(args[2]);
    Py_ssize_t field_size = PyLong_AsSsize_t(args[3]);
    Py_ssize_t request_line_size = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = (const unsigned char *)view.buf;
    Py_ssize_t n = view.len;
    PyObject *result = NULL, *start_line, *headers;
    /* An earlier CRLFCRLF would be an empty line among the lines scanned: a doubt there. */
    if (n < 4 || p[0] == '\r' || memcmp(p + n - 4, "\r\n\r\n", 4) != 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    int found = scan_lines(p, p + n - 4, 1, max_fields, field_size, request_line_size, &start_line, &headers);
    if (found <= 0) {
        if (found == 0) {
            result = Py_None;
            Py_INCREF(result);
        }
        goto done;
    }
    int keep_alive, empty_length;
    PyObject *version = PyTuple_GET_ITEM(start_line, 2);
    if (!plain_framing(headers, version == HTTP11, &keep_alive, &empty_length)) {
        result = Py_None;
        Py_INCREF(result);
    }
    else {
        PyObject *values[REQUEST_FIELDS] = {PyTuple_GET_ITEM(start_line, 0), PyTuple_GET_ITEM(start_line, 1),
                                            version, headers, empty_length ? ZERO : Py_None, Py_False,
                                            keep_alive ? Py_True : Py_False, Py_False, Py_None};
        result = new_request(args[1], values);
    }
    Py_DECREF(start_line);
    Py_DECREF(headers);
done:
    PyBuffer_Release(&view);
    return result;
}

/* ----- the app's start_response (response.py: read_start's Python path is the reference) */

/* The names the server frames a message with itself, each with its length (no strlen per line). */
static const struct {
    const char *name;
    Py_ssize_t size;
} HOP_BY_HOP[] = {{"connection", 10}, {"keep-alive", 10}, {"transfer-encoding", 17}, {"te", 2}, {"trailer", 7},
                  {"upgrade", 7}, {"proxy-connection", 16}, {NULL, 0}};

static int
contains_close(const Py_UCS1 *text, Py_ssize_t size)
{
    for (Py_ssize_t i = 0; i + 5 <= size; i++)
        if (equal_lower(text + i, 5, "close"))
            return 1;
    return 0;
}

/* read_start(status, headers) -> (code, header lines, Content-Length or None, asks to close), or
 * None in doubt: anything the Python one refuses, or text that is not Latin-1. It keeps no memory
 * of what it read: a Content-Length that changes with every response costs what a fixed one does. */
static PyObject *
read_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read_start(status, headers)");
        return NULL;
    }
    PyObject *status = args[0], *headers = args[1];
    if (!PyUnicode_CheckExact(status) || PyUnicode_KIND(status) != PyUnicode_1BYTE_KIND ||
        !PyList_CheckExact(headers))
        Py_RETURN_NONE;
    Py_ssize_t size = PyUnicode_GET_LENGTH(status);
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(status);
    if (size < 4 || text[0] < '1' || text[0] > '9' || text[1] < '0' || text[1] > '9' || text[2] < '0' ||
        text[2] > '9' || text[3] != ' ')
        Py_RETURN_NONE;
    for (Py_ssize_t i = 4; i < size; i++)
        if (!FIELD[text[i]])
            Py_RETURN_NONE;
    long code = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
    Py_ssize_t count = PyList_GET_SIZE(headers), total = 0;
    Py_UCS1 high = 0; /* any byte past ASCII: the text must say so (a canonical str) */
    for (Py_ssize_t i = 0; i < count; i++) { /* first pass: check, and size the lines */
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
            Py_RETURN_NONE;
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        if (!PyUnicode_CheckExact(name) || !PyUnicode_CheckExact(value) ||
            PyUnicode_KIND(name) != PyUnicode_1BYTE_KIND || PyUnicode_KIND(value) != PyUnicode_1BYTE_KIND)
            Py_RETURN_NONE;
        Py_ssize_t name_size = PyUnicode_GET_LENGTH(name), value_size = PyUnicode_GET_LENGTH(value);
        const Py_UCS1 *name_text = PyUnicode_1BYTE_DATA(name), *value_text = PyUnicode_1BYTE_DATA(value);
        if (name_size == 0)
            Py_RETURN_NONE;
        for (Py_ssize_t j = 0; j < name_size; j++)
            if (!TCHAR[name_text[j]])
                Py_RETURN_NONE;
        for (Py_ssize_t j = 0; j < value_size; j++) {
            if (!FIELD[value_text[j]])
                Py_RETURN_NONE;
            high |= value_text[j];
        }
        total += name_size + value_size + 4;
    }
    PyObject *fields = PyUnicode_New(total, high & 0x80 ? 255 : 127);
    if (!fields)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(fields);
    Py_ssize_t written = 0;
    PyObject *length = Py_None;
    Py_INCREF(length);
    int close = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        PyObject *name = PyTuple_GET_ITEM(item, 0), *value = PyTuple_GET_ITEM(item, 1);
        Py_ssize_t name_size = PyUnicode_GET_LENGTH(name), value_size = PyUnicode_GET_LENGTH(value);
        const Py_UCS1 *name_text = PyUnicode_1BYTE_DATA(name), *value_text = PyUnicode_1BYTE_DATA(value);
        int hop = 0;
        for (int k = 0; HOP_BY_HOP[k].name && !hop; k++)
            hop = HOP_BY_HOP[k].size == name_size && equal_lower(name_text, name_size, HOP_BY_HOP[k].name);
        if (hop) { /* the server frames the message itself */
            if (equal_lower(name_text, name_size, "connection") && contains_close(value_text, value_size))
                close = 1;
            continue;
        }
        if (name_size == 14 && equal_lower(name_text, name_size, "content-length")) {
            int digits = value_size > 0;
            long long small = 0; /* up to 18 digits: read here, without PyLong's parser */
            for (Py_ssize_t j = 0; j < value_size && digits; j++) {
                digits = value_text[j] >= '0' && value_text[j] <= '9';
                small = small * 10 + (value_text[j] - '0');
            }
            PyObject *number = !digits ? NULL : value_size <= 18 ? PyLong_FromLongLong(small)
                                                                 : PyLong_FromUnicodeObject(value, 10);
            if (!number) { /* not digits (or digits beyond ASCII, which str.isdigit() takes): Python judges */
                Py_DECREF(fields);
                Py_DECREF(length);
                if (digits)
                    return NULL;
                Py_RETURN_NONE;
            }
            Py_SETREF(length, number);
        }
        memcpy(out + written, name_text, name_size);
        written += name_size;
        out[written++] = ':';
        out[written++] = ' ';
        memcpy(out + written, value_text, value_size);
        written += value_size;
        out[written++] = '\r';
        out[written++] = '\n';
    }
    if (written != total) { /* hop-by-hop lines left out: the text is shorter */
        PyObject *shorter = PyUnicode_Substring(fields, 0, written);
        Py_SETREF(fields, shorter);
        if (!fields) {
            Py_DECREF(length);
            return NULL;
        }
    }
    PyObject *code_number = PyLong_FromLong(code), *result = code_number ? PyTuple_New(4) : NULL;
    if (!result) {
        Py_XDECREF(code_number);
        Py_DECREF(fields);
        Py_DECREF(length);
        return NULL;
    }
    PyObject *asks_close = close ? Py_True : Py_False;
    Py_INCREF(asks_close);
    PyTuple_SET_ITEM(result, 0, code_number);
    PyTuple_SET_ITEM(result, 1, fields);
    PyTuple_SET_ITEM(result, 2, length);
    PyTuple_SET_ITEM(result, 3, asks_close);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_head", (PyCFunction)(void (*)(void))scan_head, METH_FASTCALL,
     "scan_head(buf, start, end, need_request_line, max_fields, field_size, request_line_size)"},
    {"whole_head", (PyCFunction)(void (*)(void))whole_head, METH_FASTCALL,
     "whole_head(buf, request_type, max_fields, field_size, request_line_size) -> the request, or None"},
    {"read_start", (PyCFunction)(void (*)(void))read_start, METH_FASTCALL,
     "read_start(status, headers) -> (code, header lines, Content-Length or None, asks to close), or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "forkwsgi.http._speedups",
    "The compiled head scanner and response head reader (scan.py and response.py hold the Python "
    "references).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    fill_tables();
    HTTP11 = PyUnicode_InternFromString("HTTP/1.1");
    HTTP10 = PyUnicode_InternFromString("HTTP/1.0");
    GET = PyUnicode_InternFromString("GET");
    HEAD = PyUnicode_InternFromString("HEAD");
    POST = PyUnicode_InternFromString("POST");
    if (!HTTP11 || !HTTP10 || !GET || !HEAD || !POST || fill_known_names() < 0)
        return NULL;
    /* the framing fields, as the scanner gives their names: the shared str of the known list */
    HOST = known_name((const unsigned char *)"host", 4);
    CONNECTION = known_name((const unsigned char *)"connection", 10);
    CONTENT_LENGTH = known_name((const unsigned char *)"content-length", 14);
    TRANSFER_ENCODING = known_name((const unsigned char *)"transfer-encoding", 17);
    EXPECT = known_name((const unsigned char *)"expect", 6);
    UPGRADE = known_name((const unsigned char *)"upgrade", 7);
    ZERO = PyLong_FromLong(0);
    for (int i = 0; i < REQUEST_FIELDS; i++)
        if (!(REQUEST_FIELD_TEXT[i] = PyUnicode_InternFromString(REQUEST_FIELD_NAMES[i])))
            return NULL;
    if (!HOST || !CONNECTION || !CONTENT_LENGTH || !TRANSFER_ENCODING || !EXPECT || !UPGRADE || !ZERO)
        return NULL;
    return PyModule_Create(&module);
}
