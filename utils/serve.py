"""`python -m utils.serve`: a web page that asks a trained classifier about your photos (lesson 6).

    python -m utils.serve                      # lesson 3's best full run (else its latest), on http://127.0.0.1:8000
    python -m utils.serve --model models/05_bird_classifier   # a lesson's folder: as utils.predict chooses
    python -m utils.serve --model models/03_cnn_from_scratch/runs/<run>/model.keras --classes cats,dogs

The model is loaded once. Photos are read as the lessons read theirs (`images.load_photo`); a bird classifier's
are centre-cropped and labelled by its threshold, as `utils.predict` does. `GET /` the page; `GET /health`;
`POST /predict` (multipart field `file`) answers `{"label", "probability", "model", "probabilities"}`, with
`?explain=1` also `"heatmap"`, the Grad-CAM overlay as a PNG data URL; a refused upload gets a 4xx and
`{"error": "..."}`. Listens on this computer only unless `--host` says otherwise.
"""

import argparse
import html
import os
import pathlib
import shutil
import signal
import socket
import sys
import tempfile
import urllib.parse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from utils import classifiers, images

PAGE = pathlib.Path(__file__).with_name("serve_page.html")
MEGABYTE = 1_000_000  # file sizes are decimal megabytes across the kit, as file browsers show them
ERRORS = {  # what a refused request gets back as {"error": ...}; docs/troubleshooting.md quotes each one
    "too_large": "the upload is larger than this server's limit of {limit:g} MB; send a smaller photo, or start "
                 "the server with a larger --max-megabytes.",
    "no_file": 'no photo in the request: send it as a multipart form field named "file" '
               "(for example `curl -F file=@photo.jpg` to this server's /predict).",
    "bad_form": "the request's form could not be read ({reason}); send the photo as a multipart form field "
                'named "file".',
    "empty": "{name} is empty (0 bytes); choose a photo file (JPEG, PNG, GIF, BMP, WebP, TIFF or AVIF) and send "
             "it again.",
    "query": "{where}: {reason}; ask for /predict, or for /predict?explain=1 to get the Grad-CAM overlay too.",
    "route": "{method} {path}: {reason}; this server answers GET /, GET /health and POST /predict.",
    "bug": "unexpected {kind} ({reason}): a bug in the kit; report it with the server's output.",
    "cross_site": "a page from {origin} sent this request: this server answers only its own page (and programs "
                  "such as curl, which send no Origin); open the page from this server's address instead.",
    "host": "this server answers requests for 127.0.0.1 or localhost only, not for {host!r}; open "
            "http://127.0.0.1:{port} (through an SSH tunnel on a cloud box), or start it with --host.",
}
THIS_COMPUTER = ("127.0.0.1", "localhost", "::1")  # the names a server listening on this computer only answers
PHOTO_STATUS = {"is too large to read safely": 413, "is damaged": 422}  # any other PhotoError: 415, not an image


def refuse(status, key, **values):
    return JSONResponse({"error": ERRORS[key].format(**values)}, status_code=status)


def body_limit(app, max_bytes, refusal):
    """ASGI middleware: answers `refusal` to a body over `max_bytes`, by its Content-Length before reading it,
    or as soon as one sent without a length grows past the limit."""
    async def limited(scope, receive, send):
        length = dict(scope.get("headers", ())).get(b"content-length", b"")
        if scope["type"] == "http" and length.isdigit() and int(length) > max_bytes:
            return await refusal(scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise OverflowError  # caught below: the body grew past the limit
            return message

        try:  # /predict reads the whole form before it answers, so no answer has started yet
            await app(scope, counted_receive, send)
        except OverflowError:
            await refusal(scope, receive, send)
    return limited


def create_app(classifier, max_megabytes=20, local=True):
    """The FastAPI app serving `classifier`; uploads go to a private temporary folder, `app.state.upload_dir`.

    `local`: listening on this computer only, so a request for any other name is refused (see `same_site`)."""
    app = FastAPI(title="utils.serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.uploads = tempfile.TemporaryDirectory(prefix="utils-serve-")  # removed when the server stops
    app.state.upload_dir = pathlib.Path(app.state.uploads.name)
    max_bytes, too_large = int(max_megabytes * MEGABYTE), refuse(413, "too_large", limit=max_megabytes)
    app.add_middleware(body_limit, max_bytes=max_bytes, refusal=too_large)
    page = PAGE.read_text().replace("__MAX_BYTES__", str(max_bytes)).replace(
        "__TOO_LARGE__", html.escape(ERRORS["too_large"].format(limit=max_megabytes)))

    @app.exception_handler(HTTPException)
    async def http_error(request, error):
        return refuse(error.status_code, "route", method=request.method, path=request.url.path, reason=error.detail)

    @app.exception_handler(RequestValidationError)
    async def bad_query(request, error):
        first = error.errors()[0]
        return refuse(422, "query", where=".".join(map(str, first["loc"])), reason=first["msg"])

    @app.exception_handler(Exception)
    async def bug(request, error):  # the traceback still goes to the server's output
        return refuse(500, "bug", kind=type(error).__name__, reason=error)

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def home():
        return page

    @app.api_route("/health", methods=["GET", "HEAD"])
    def health():
        return {"status": "ok", "model": classifier.description, "classes": classifier.classes}

    @app.post("/predict")
    async def predict_photo(request: Request, explain: bool = False):
        try:
            form = await request.form(max_files=1, max_fields=10)
        except HTTPException as error:  # two files, too many fields, a broken multipart body
            return refuse(400, "bad_form", reason=error.detail)
        except ClientDisconnect:  # no one is left to read the answer
            return refuse(400, "bad_form", reason="the upload stopped before its end")
        upload = form.get("file")
        if not hasattr(upload, "filename"):
            await form.close()
            return refuse(400, "no_file")
        name = pathlib.PurePosixPath((upload.filename or "").replace("\\", "/")).name[:100] or "the uploaded file"
        handle, path = tempfile.mkstemp(dir=app.state.upload_dir, suffix=".upload")  # named by the server
        try:
            with os.fdopen(handle, "wb") as out:
                shutil.copyfileobj(upload.file, out)
            if not os.path.getsize(path):
                return refuse(400, "empty", name=name)
            return await run_in_threadpool(classifier.answer, path, explain)
        except images.PhotoError as error:
            said = str(error)  # about the server's own file: the sender's name could hold the words below
            status = next((code for words, code in PHOTO_STATUS.items() if words in said), 415)
            return JSONResponse({"error": said.replace(path, name)}, status_code=status)
        finally:
            os.unlink(path)
            await form.close()

    @app.middleware("http")  # runs first, before the body is read
    async def same_site(request, call_next):
        """Any web page may make a browser send a form to this computer: answer only this server's own page.
        A name other than this computer's is a page that renamed itself to reach it (DNS rebinding)."""
        host = request.headers.get("host", "")
        try:
            name = urllib.parse.urlsplit(f"//{host}").hostname
        except ValueError:  # not a name at all ("[::1", say)
            name = None
        if local and name not in THIS_COMPUTER:
            return refuse(403, "host", host=host, port=request.scope["server"][1])
        origin = request.headers.get("origin")  # sent by browsers, not by curl or requests
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            return refuse(403, "cross_site", origin=origin)
        return await call_next(request)

    return app


def listen(host, port):
    """A socket bound to `host:port`, so that a busy port is refused before the model is loaded."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, protocol)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        raise ValueError(f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port "
                         "(or --host), or stop the program that uses it.") from None
    return sock


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m utils.serve",
                                     description="A web page that asks a trained classifier about your photos.")
    parser.add_argument("--model", help="a .keras model file, or a lesson's folder in models/ or its name (its best "
                                        f"full run, else its latest run; default: models/{classifiers.LESSON})")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on (default: 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--classes", help="class names in output order, comma-separated (default: metrics.json)")
    parser.add_argument("--max-megabytes", type=float, default=20, help="the largest upload taken (default: 20)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: use a port number from 1 to 65535")
    if not 1 <= args.max_megabytes * MEGABYTE < float("inf"):  # create_app counts whole bytes: none, inf or nan fail
        parser.error(f"--max-megabytes {args.max_megabytes:g}: use a size of at least one byte (0.000001), such as 20")
    model_file, description = classifiers.find_model(args.model)
    sock = listen(args.host, args.port)
    classifier = classifiers.Classifier(model_file, description, args.classes)
    local = args.host in THIS_COMPUTER
    app = create_app(classifier, args.max_megabytes, local)
    if not local:
        print(f"warning: --host {args.host}: others on your network can open this page and send it photos; "
              "leave --host out to keep it to this computer.", file=sys.stderr)
    where = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {description} ({', '.join(classifier.classes)}) on http://{where}:{args.port} "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))  # uvicorn re-sends it: exit cleanly
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    from utils import cli

    sys.exit(cli.run(main, interrupted="the server stopped; run the same command to start it again"))
