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
import base64
import html
import io
import os
import pathlib
import shutil
import signal
import socket
import sys
import tempfile
import threading

import numpy as np
import PIL.Image
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from utils import evaluate, explain, images, paths, predict, runs

LESSON = "03_cnn_from_scratch"  # whose best model is served by default
PAGE = pathlib.Path(__file__).with_name("serve_page.html")
OVERLAY_SIDE = 480  # longer side of the Grad-CAM overlay sent back, in pixels: enough for the page
MEGABYTE = 1_000_000  # file sizes are decimal megabytes across the kit, as file browsers show them
ERRORS = {  # what a refused request gets back as {"error": ...}; docs/troubleshooting.md quotes each one
    "too_large": "the upload is larger than this server's limit of {limit:g} MB; send a smaller photo, or start "
                 "the server with a larger --max-megabytes.",
    "no_file": 'no photo in the request: send it as a multipart form field named "file" '
               "(for example `curl -F file=@photo.jpg` to this server's /predict).",
    "bad_form": "the request's form could not be read ({reason}); send the photo as a multipart form field "
                'named "file".',
    "empty": "{name} is empty (0 bytes); choose a photo file (JPEG, PNG, GIF or BMP) and send it again.",
    "query": "{where}: {reason}; ask for /predict, or for /predict?explain=1 to get the Grad-CAM overlay too.",
    "route": "{method} {path}: {reason}; this server answers GET /, GET /health and POST /predict.",
    "bug": "unexpected {kind} ({reason}): a bug in the kit; report it with the server's output.",
}
PHOTO_STATUS = {"is too large to read safely": 413, "is damaged": 422}  # any other PhotoError: 415, not an image


def refuse(status, key, **values):
    return JSONResponse({"error": ERRORS[key].format(**values)}, status_code=status)


def find_model(path=None):
    """`(model_file, description)`: the `.keras` file `path`, else lesson 3's best run's model. `path` may be a
    lesson's folder in `models/` or its name: its best full run, else its latest (`predict.lesson_model`)."""
    if path is None:
        model_file, note = runs.best_model(LESSON)
        if model_file is None:
            raise FileNotFoundError(f"{note}: run lesson 3 (notebooks/{LESSON}.ipynb) first, or pass --model "
                                    "with a .keras model file.")
        return pathlib.Path(model_file), f"{model_file} ({note})"
    model_file = pathlib.Path(path).expanduser().resolve()
    if not model_file.exists() and path.strip():  # a lesson's name, or models/<lesson> from another folder
        given = pathlib.Path(path).expanduser()
        in_models = paths.MODELS / given if len(given.parts) == 1 else paths.resolve(given)
        model_file = in_models.resolve() if in_models.is_dir() else model_file
    if model_file.is_dir():
        if model_file.parent == paths.MODELS.resolve():
            return predict.lesson_model(model_file.name)
        raise ValueError(f"{model_file} is a folder, not a lesson's folder in {paths.MODELS}: pass --model a "
                         "lesson's folder (such as models/03_cnn_from_scratch) or the model.keras of a training run.")
    if not model_file.is_file():
        raise FileNotFoundError(f"no model file at {model_file}: pass --model with the model.keras of a "
                                "training run (models/<lesson>/runs/<run>/model.keras), or a lesson's folder "
                                "(models/<lesson>: its best run).")
    if model_file.suffix != ".keras":
        raise ValueError(f"{model_file} is not a .keras model file: pass --model with the model.keras of a "
                         "training run.")
    return model_file, str(model_file)


def load_model(model_file):
    """The Keras model in `model_file`, refused in one line unless it classifies fixed-size RGB photos."""
    model = predict.read_model(model_file)
    inputs, outputs = getattr(model, "input_shape", None), getattr(model, "output_shape", None)
    if not (isinstance(inputs, tuple) and len(inputs) == 4 and inputs[3] == 3
            and all(isinstance(size, int) for size in inputs[1:3])):
        raise ValueError(f"{model_file} takes input of shape {inputs}; utils.serve needs a model of "
                         "fixed-size colour photos, (batch, height, width, 3), such as lesson 3's.")
    if not (isinstance(outputs, tuple) and len(outputs) == 2 and isinstance(outputs[1], int)):
        raise ValueError(f"{model_file} gives outputs of shape {outputs}; utils.serve needs a classifier "
                         "with one softmax output per class, or one sigmoid unit.")
    return model


def class_names(model_file, count, given=None):
    """The `count` class names in output order: `given` ("cats,dogs"), else `class_counts` in metrics.json
    beside the model (`predict.recorded_classes`: lessons 3 and 5), else "class 0", ..."""
    if given is not None:
        names = [name.strip() for name in given.split(",")]
        if len(names) != count or not all(names) or len(set(names)) != count:
            raise ValueError(f"--classes {given!r} does not give {count} different names, one per output of "
                             "the model: list them comma-separated, in the model's output order.")
        return names
    names = predict.recorded_classes(model_file) or []
    return names if len(names) == count else [f"class {i}" for i in range(count)]


class Classifier:
    """A loaded model, its class names and how photos are prepared for it; one photo at a time."""

    def __init__(self, model_file, description, classes=None):
        self.model, self.description = load_model(model_file), description
        self.classes = class_names(model_file, max(self.model.output_shape[1], 2), classes)
        self.size, self.lock = self.model.input_shape[1:3], threading.Lock()
        self.preparation, self.threshold = predict.bird_settings(model_file)  # lesson 5's: as utils.predict
        self.explain_problem, self.decoding = None, threading.BoundedSemaphore(2)  # photos decoded at once
        self.answer_pixels(np.zeros((*self.size, 3), "float32"), True)  # warm-up: the first calls build graphs

    def answer_pixels(self, photo, with_heatmap):
        """`(probabilities, class answered, heat map of that class or None)` for one prepared photo, one at a time."""
        with self.lock:
            probabilities = evaluate.as_probabilities(self.model.predict_on_batch(photo[None]))[0]
            best = int(np.argmax(probabilities) if self.threshold is None else probabilities[-1] >= self.threshold)
            if not with_heatmap or self.explain_problem:
                return probabilities, best, None
            try:
                return probabilities, best, explain.grad_cam(self.model, photo[None], best)[0]
            except ValueError as error:  # not a chain of layers, no convolution: answers without a heat map
                self.explain_problem = str(error)
                return probabilities, best, None

    def answer(self, path, with_heatmap=False):
        """What /predict answers for the photo file at `path`; raises PhotoError when it cannot be read."""
        with self.decoding:  # a 90-megapixel photo takes over a gigabyte to decode: two at a time
            photo = images.load_photo(path, self.size, **self.preparation)
            probabilities, best, heatmap = self.answer_pixels(photo, with_heatmap)
            answer = {"label": self.classes[best], "probability": float(probabilities[best]),
                      "model": self.description, "probabilities": dict(zip(self.classes, map(float, probabilities)))}
            if heatmap is not None:
                answer["heatmap"] = self.overlay(path, heatmap)
            elif with_heatmap:
                answer["heatmap_error"] = self.explain_problem
            return answer

    def overlay(self, path, heatmap):
        """The heat map over the upright photo (its centre square for lesson 5), as a PNG data URL."""
        photo = images.open_photo(path)
        if self.preparation.get("fit") == "crop":
            side = min(photo.size)
            left, top = (photo.width - side) // 2, (photo.height - side) // 2
            photo = photo.crop((left, top, left + side, top + side))
        photo.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE))
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.round(explain.overlay(np.asarray(photo), heatmap) * 255).astype(np.uint8)).save(
            buffer, "PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


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


def create_app(classifier, max_megabytes=20):
    """The FastAPI app serving `classifier`; uploads go to a private temporary folder, `app.state.upload_dir`."""
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
            message = str(error).replace(path, name)
            status = next((code for words, code in PHOTO_STATUS.items() if words in message), 415)
            return JSONResponse({"error": message}, status_code=status)
        finally:
            os.unlink(path)
            await form.close()

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
    parser.add_argument("--model", help="a .keras model file, or a lesson's folder in models/ (its best full run, "
                                        f"else its latest run; default: models/{LESSON})")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on (default: 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--classes", help="class names in output order, comma-separated (default: metrics.json)")
    parser.add_argument("--max-megabytes", type=float, default=20, help="the largest upload taken (default: 20)")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port}: use a port number from 1 to 65535")
    if not args.max_megabytes > 0:
        parser.error(f"--max-megabytes {args.max_megabytes:g}: use a size above 0")
    model_file, description = find_model(args.model)
    sock = listen(args.host, args.port)
    classifier = Classifier(model_file, description, args.classes)
    app = create_app(classifier, args.max_megabytes)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
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
