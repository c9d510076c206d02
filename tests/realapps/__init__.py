"""Real frameworks served by forkwsgi in tests/scenarios/test_realapps.py: a small Django project and a Flask app.

Both expose the same paths, so one test body checks both:

- ``/stream?n=N``  a streamed body (Django StreamingHttpResponse, Flask generator) of N chunks
- ``/text``        a plain body of known length
- ``/file``        ``$REALAPPS_DATA_DIR/download.bin`` (Django FileResponse, Flask send_file)
- ``/upload``      multipart POST: sha256 and size of the ``upload`` file field, and the ``note`` field
- ``/digest``      sha256 and size of the raw request body (chunked uploads)
- ``/redirect``    302 to ``/target``
- ``/port``        REMOTE_PORT, to tell whether a connection was reused

Every response carries ``X-Remote-Port`` (HEAD included) for the same reason.
"""
import hashlib
import os

DOWNLOAD_NAME = "download.bin"


def stream_chunks(count):
    return [b"chunk%d;" % i for i in range(count)]


def text_body():
    return b"plain text body of a known length\n" * 3


def download_path():
    return os.path.join(os.environ["REALAPPS_DATA_DIR"], DOWNLOAD_NAME)


def digest_stream(read, size=65536):
    """(sha256 hex, byte count) of everything ``read(size)`` yields until b''; bounded by the input's end."""
    digest = hashlib.sha256()
    total = 0
    while True:
        data = read(size)
        if not data:
            return digest.hexdigest(), total
        digest.update(data)
        total += len(data)
