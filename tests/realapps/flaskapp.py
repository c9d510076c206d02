"""The small Flask app served in tests/scenarios/test_realapps.py (the same paths as the Django project)."""

from flask import Flask, Response, jsonify, redirect, request, send_file, url_for

from . import digest_stream, download_path, stream_chunks, text_body

app = Flask(__name__)


@app.after_request
def tag(response):
    response.headers["X-Remote-Port"] = request.environ["REMOTE_PORT"]
    return response


@app.route("/stream")
def stream():
    count = request.args.get("n", 3, type=int)

    def generate():
        yield from stream_chunks(count)

    # A generator: no length known, so Werkzeug sets no Content-Length and returns () for HEAD.
    return Response(generate(), mimetype="text/plain")


@app.route("/text")
def text():
    return Response(text_body(), mimetype="text/plain")


@app.route("/file")
def file():
    return send_file(download_path(), mimetype="application/octet-stream")


@app.route("/upload", methods=["POST"])
def upload():
    storage = request.files["upload"]
    sha256, size = digest_stream(storage.stream.read)
    return jsonify(sha256=sha256, size=size, note=request.form.get("note"))


@app.route("/digest", methods=["POST"])
def digest():
    sha256, size = digest_stream(request.stream.read)
    return jsonify(sha256=sha256, size=size)


@app.route("/redirect")
def redirect_view():
    return redirect(url_for("target"))


@app.route("/target")
def target():
    return Response(b"redirect target", mimetype="text/plain")


@app.route("/port")
def port():
    return Response(request.environ["REMOTE_PORT"], mimetype="text/plain")


application = app
