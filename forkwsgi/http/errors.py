"""HTTP-level errors raised by the sans-I/O parser; each knows its status code."""


class HTTPError(Exception):
    """A request the server must refuse; the connection is closed afterwards."""

    status = 400
    reason = "Bad Request"

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


class BadRequest(HTTPError):
    pass


class RequestTimeout(HTTPError):
    status = 408
    reason = "Request Timeout"


class PayloadTooLarge(HTTPError):
    status = 413
    reason = "Content Too Large"


class URITooLong(HTTPError):
    status = 414
    reason = "URI Too Long"


class ExpectationFailed(HTTPError):
    status = 417
    reason = "Expectation Failed"


class HeaderFieldsTooLarge(HTTPError):
    status = 431
    reason = "Request Header Fields Too Large"


class NotImplementedMethod(HTTPError):
    status = 501
    reason = "Not Implemented"


class VersionNotSupported(HTTPError):
    status = 505
    reason = "HTTP Version Not Supported"
