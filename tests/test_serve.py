"""utils.serve: the web app for a trained classifier, over HTTP and in a real browser (chromium)."""

import ast
import base64
import contextlib
import http.client
import io
import json
import os
import pathlib
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zlib

import keras
import numpy as np
import pytest
import uvicorn
from PIL import Image

from utils import classifiers, cli, explain, images, paths, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LIMIT_MEGABYTES = 0.25  # the test server's upload limit


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny CNN with random weights, saved as a run would save it, with a lesson 3 style metrics.json."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    path = tmp_path_factory.mktemp("run") / "model.keras"
    model.save(path)
    (path.parent / "metrics.json").write_text(json.dumps({"class_counts": {"dogs": 8, "cats": 8}}))
    return path


def drawn_photo(width=120, height=90, seed=0):
    """A photo to classify: a gradient, a disc and a bar, different in each corner (so turning it shows);
    noise from `seed`, none for None."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([255 * x / width, 255 * y / height, np.full_like(x, 90.0)], axis=-1)
    pixels[(x - width * 0.3) ** 2 + (y - height * 0.3) ** 2 < (min(width, height) * 0.2) ** 2] = (250, 240, 20)
    pixels[int(height * 0.75):, : width // 2] = (20, 20, 200)
    noise = np.random.default_rng(seed).normal(0, 8, pixels.shape) if seed is not None else 0
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "photo.jpg"
    drawn_photo().save(path, quality=92)
    return path


def huge_png(path, width=20000, height=10000):
    """A valid black PNG of width x height one-bit pixels (200 megapixels), written in about 25 KB."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    squeeze = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter type 0, then the row's bits
    pixels = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


@contextlib.contextmanager
def running(app):
    """`app` served by uvicorn in a thread on a free port of 127.0.0.1; yields (host, port)."""
    sock = serve.listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def classifier(model_file):
    return classifiers.Classifier(model_file, "the tiny test model")


@pytest.fixture(scope="module")
def server(classifier):
    app = serve.create_app(classifier, max_megabytes=LIMIT_MEGABYTES)
    with running(app) as address:
        yield app, address


def post(address, data, name="photo.jpg", field="file", query="", chunked=False, headers=None):
    """POST /predict with `data` as a multipart file field (and `headers`); returns (status, JSON)."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    if chunked:  # an iterable body: http.client sends it chunked, without a Content-Length
        whole = body
        body = (whole[start:start + 65536] for start in range(0, len(whole), 65536))
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        connection.request("POST", "/predict" + query, body=body,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def ask(address, path, headers):
    """GET `path` with `headers` (a `Host` of one's own, say); returns (status, JSON)."""
    connection = http.client.HTTPConnection(*address, timeout=60)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def get(address, path):
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}{path}", timeout=30) as response:
        return response.read()


def test_health_names_the_model_and_the_classes_from_metrics_json(server):
    assert json.loads(get(server[1], "/health")) == {"status": "ok", "model": "the tiny test model",
                                                     "classes": ["cats", "dogs"]}  # sorted, as Keras sorts folders


def test_a_photo_gets_the_models_own_answer(server, classifier, photo_file):
    status, answer = post(server[1], photo_file.read_bytes())
    assert status == 200, answer
    assert set(answer) == {"label", "probability", "model", "probabilities"}
    expected = classifier.model.predict(images.load_photo(photo_file, (32, 32))[None], verbose=0)[0]
    assert answer["label"] == ["cats", "dogs"][int(np.argmax(expected))]
    assert answer["probability"] == pytest.approx(expected.max(), abs=1e-5)
    assert list(answer["probabilities"].values()) == pytest.approx(list(expected), abs=1e-5)
    assert answer["model"] == "the tiny test model"
    assert not list(server[0].state.upload_dir.iterdir()), "the upload's temporary file was left behind"


def test_explain_adds_the_grad_cam_overlay_of_the_answered_class_as_a_png(server, classifier, photo_file):
    status, answer = post(server[1], photo_file.read_bytes(), query="?explain=1")
    assert status == 200, answer
    prefix = "data:image/png;base64,"
    assert answer["heatmap"].startswith(prefix)
    overlay = Image.open(io.BytesIO(base64.b64decode(answer["heatmap"][len(prefix):])))
    assert overlay.format == "PNG" and overlay.size == (120, 90) and overlay.mode == "RGB"
    # the map of the class the server answered, over the photo: worked out here from the model itself
    pixels = images.load_photo(photo_file, (32, 32))[None]
    answered = ["cats", "dogs"].index(answer["label"])
    photo = np.asarray(Image.open(photo_file).convert("RGB"))
    heat, other_heat = (explain.grad_cam(classifier.model, pixels, index)[0] for index in (answered, 1 - answered))
    assert heat.max() > 0, "a blank map would not tell a right overlay from a wrong one"
    expected, other = (np.round(explain.overlay(photo, h) * 255) for h in (heat, other_heat))
    np.testing.assert_allclose(np.asarray(overlay, dtype=float), expected, atol=1)
    assert np.abs(other - expected).max() > 2, "the two classes' maps must differ for this to test the class"


def test_a_phone_portrait_is_turned_upright_before_the_model_sees_it(server, classifier, tmp_path):
    upright = drawn_photo(64, 96, seed=None)  # smooth: JPEG's own rounding moves the answer little
    upright.save(tmp_path / "upright.jpg", quality=100, subsampling=0)
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = 6  # stored on its side: turn 90 degrees clockwise to view
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    stored.save(tmp_path / "phone.jpg", quality=100, subsampling=0, exif=exif)
    stored.save(tmp_path / "untagged.jpg", quality=100, subsampling=0)
    answers = {name: post(server[1], (tmp_path / f"{name}.jpg").read_bytes())[1]["probabilities"]["dogs"]
               for name in ("upright", "phone", "untagged")}
    assert answers["phone"] == pytest.approx(answers["upright"], abs=1e-4)
    assert abs(answers["untagged"] - answers["upright"]) > 20 * 1e-4  # the test would see a photo left on its side


@pytest.mark.parametrize("name, data, status, words", [
    ("notes.txt", b"a shopping list, not a photo\n", 415, "notes.txt is not an image this kit can read"),
    ("empty.jpg", b"", 400, "empty.jpg is empty (0 bytes)"),
    ("huge.png", None, 413, "huge.png is too large to read safely (over 89 megapixels)"),
    ("cut.jpg", "half", 422, "cut.jpg is damaged"),
    # the status comes from what was wrong with the file, never from the words of its name
    ("is damaged.jpg", b"a shopping list\n", 415, "is damaged.jpg is not an image this kit can read"),
    ("photo is too large to read safely.jpg", b"a list\n", 415, "safely.jpg is not an image this kit can read"),
])
def test_a_photo_that_cannot_be_used_is_refused_in_one_sentence(server, photo_file, tmp_path, name, data, status,
                                                                  words):
    if data is None:
        data = huge_png(tmp_path / name).read_bytes()
        assert len(data) < LIMIT_MEGABYTES * serve.MEGABYTE / 4  # refused for its pixels, not its bytes
    elif data == "half":
        data = photo_file.read_bytes()[:len(photo_file.read_bytes()) // 2]
    answer = post(server[1], data, name=name)
    assert answer[0] == status and words in answer[1]["error"], answer
    assert str(server[0].state.upload_dir) not in answer[1]["error"]  # the server's own file names stay inside


def test_requests_without_a_photo_or_over_the_limit_are_refused_and_the_server_carries_on(server, photo_file):
    refusals = [
        (post(server[1], b"\xff\xd8" + b"0" * 400_000), 413, "larger than this server's limit of 0.25 MB"),
        (post(server[1], b"\xff\xd8" + b"0" * 400_000, chunked=True), 413, "larger than this server's limit"),
        (post(server[1], photo_file.read_bytes(), field="photo"), 400, 'a multipart form field named "file"'),
        (post(server[1], b"x", query="?explain=perhaps"), 422, "query.explain: "),
    ]
    for (status, answer), expected_status, words in refusals:
        assert status == expected_status and words in answer["error"], answer
    connection = http.client.HTTPConnection(*server[1], timeout=30)
    connection.request("POST", "/predict", body=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"})
    response = connection.getresponse()
    assert response.status == 400 and "no photo in the request" in json.loads(response.read())["error"]
    connection.close()
    assert post(server[1], photo_file.read_bytes())[0] == 200


def test_the_name_the_client_gives_is_never_used_as_a_path(server, photo_file, tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")  # the server's working folder: ../../ is tmp_path
    tag = uuid.uuid4().hex
    named = {f"../../evil-{tag}.jpg": f"evil-{tag}.jpg", f"/tmp/x-{tag}.jpg": f"x-{tag}.jpg",
             f"..\\..\\evil-{tag}.jpg": f"evil-{tag}.jpg", f"evil-{tag}.jpg": f"evil-{tag}.jpg"}
    for name, shown in named.items():
        assert post(server[1], photo_file.read_bytes(), name=name)[0] == 200
        status, answer = post(server[1], b"not a photo", name=name)
        assert status == 415 and answer["error"].startswith(f"{shown} is not an image"), answer
    upload_dir = server[0].state.upload_dir
    created = [*tmp_path.rglob(f"*{tag}*"), *pathlib.Path("/tmp").glob(f"*{tag}*"),
               *upload_dir.parent.glob(f"*{tag}*"), *upload_dir.parent.parent.glob(f"*{tag}*")]
    assert not created and not list(upload_dir.iterdir())


def printed_lines(module):
    """The lines `module` prints or passes to parser.error or cli.run, as the doc quotes them (… for values)."""
    def template(node):
        if isinstance(node, ast.JoinedStr):
            return "".join(part.value if isinstance(part, ast.Constant) else "…" for part in node.values)
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "…"

    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "print":
            yield template(node.args[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "error":
            yield "python -m utils.serve: error: " + template(node.args[0])
        elif isinstance(node, ast.keyword) and node.arg == "interrupted":
            yield f"interrupted: {template(node.value)}."


def test_only_this_servers_own_page_is_answered(server, photo_file):
    """Any web page can make a browser post a form to 127.0.0.1; the browser then says which page sent it (Origin),
    and a page that renamed itself to reach this computer (DNS rebinding) still asks for its own name (Host)."""
    host, port = server[1]
    status, answer = post(server[1], photo_file.read_bytes(), headers={"Origin": "https://evil.example"})
    assert status == 403 and answer == {"error": serve.ERRORS["cross_site"].format(origin="https://evil.example")}
    status, answer = post(server[1], photo_file.read_bytes(), headers={"Origin": f"http://{host}:{port}"})
    assert status == 200 and answer["label"] in ("cats", "dogs")  # its own page
    for name in (f"evil.example:{port}", "192.168.1.20", "[::1"):
        assert ask(server[1], "/health", {"Host": name}) == (
            403, {"error": serve.ERRORS["host"].format(host=name, port=port)})  # the port it listens on
    for name in (f"localhost:{port}", "localhost:8001", "127.0.0.1", "[::1]:8000"):  # a tunnel's port may differ
        assert ask(server[1], "/health", {"Host": name})[0] == 200
    status, answer = post(server[1], photo_file.read_bytes(), headers={"Host": "localhost:8001",
                                                                        "Origin": "http://localhost:8001"})
    assert status == 200  # the page opened through `ssh -L 8001:127.0.0.1:8000`


def test_a_server_for_the_network_answers_any_name_but_still_only_its_own_page(classifier, photo_file):
    with running(serve.create_app(classifier, local=False)) as address:  # `--host 0.0.0.0`
        assert ask(address, "/health", {"Host": "laptop.lan:8000"})[0] == 200
        headers = {"Host": "laptop.lan:8000", "Origin": "http://other.lan"}
        assert post(address, photo_file.read_bytes(), headers=headers)[0] == 403
        headers["Origin"] = "http://laptop.lan:8000"
        assert post(address, photo_file.read_bytes(), headers=headers)[0] == 200


def test_head_requests_are_answered_as_gets_are(server):
    for path in ("/", "/health"):
        connection = http.client.HTTPConnection(*server[1], timeout=30)
        try:
            connection.request("HEAD", path)
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b"", path
        finally:
            connection.close()


def test_a_bird_classifier_anywhere_is_prepared_and_labelled_as_utils_predict_does(model_file, photo_file, tmp_path):
    from utils import birds, predict

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    copied = tmp_path / "my-copy" / "model.keras"  # a run's model copied out of models/: no lesson folder
    copied.parent.mkdir()
    model.save(copied)
    wide = tmp_path / "wide.jpg"  # not square: the centre crop (lesson 5) and a squash differ
    drawn_photo(200, 80).save(wide, quality=95)
    (answer,), _ = predict.is_it_a_bird(model, [wide])
    # a threshold on the other side of P(bird) from 0.5: argmax and the threshold disagree
    threshold = answer.probability - 0.01 if answer.probability < 0.5 else answer.probability + 0.01
    (copied.parent / "metrics.json").write_text(json.dumps({
        "class_counts": {"train": {"not bird": 30, "bird": 10}}, "threshold": threshold}))
    (answer,), _ = predict.is_it_a_bird(model, [wide], classifiers.default_threshold(copied))
    bird_classifier = classifiers.Classifier(copied, "a copied bird classifier")
    served = bird_classifier.answer(str(wide))
    assert served["probabilities"]["bird"] == pytest.approx(answer.probability, abs=1e-5)
    assert served["label"] == ("bird" if answer.is_bird else "not bird")
    from utils import explain

    photo = images.load_photo(wide, (32, 32), **birds.PHOTO_PREPARATION)
    _, best, heatmap = bird_classifier.answer_pixels(photo, True)  # the heat map explains the answer given
    assert best == int(answer.is_bird)
    np.testing.assert_allclose(heatmap, explain.grad_cam(bird_classifier.model, photo[None], best)[0], atol=1e-5)
    assert served["label"] != ["not bird", "bird"][int(answer.probability >= 0.5)]
    bird = float(bird_classifier.answer_pixels(photo, False)[0][-1])
    bird_classifier.threshold = bird  # P(bird) exactly at the threshold is a bird, for both
    assert bird_classifier.answer_pixels(photo, False)[1] == 1 and predict.Answer(wide, bird, bird).is_bird
    squashed = classifiers.Classifier(model_file, "lesson 3 style").preparation
    assert squashed == {} and classifiers.Classifier(copied, "").preparation == birds.PHOTO_PREPARATION


def test_at_most_two_photos_are_decoded_at_once(classifier, photo_file, monkeypatch):
    inside, most, guard = 0, 0, threading.Lock()
    load_photo = images.load_photo

    def slow_load(*args, **kwargs):
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.2)
        with guard:
            inside -= 1
        return load_photo(*args, **kwargs)

    monkeypatch.setattr(images, "load_photo", slow_load)
    threads = [threading.Thread(target=classifier.answer, args=(str(photo_file),)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert most == 2


def test_every_message_the_server_returns_prints_or_shows_is_in_the_troubleshooting_page():
    doc = (paths.ROOT / "docs" / "troubleshooting.md").read_text()
    returned = [re.sub(r"\{[^}]*\}", "…", text) for text in serve.ERRORS.values()]
    page = serve.PAGE.read_text()
    shown = [re.sub(r"\$\{[^}]*\}", "…", text) for text in re.findall(r"`(the server [^`]*)`", page)]
    printed = list(printed_lines(pathlib.Path(serve.__file__)))
    assert len(shown) == 2 and len(printed) == 5, (shown, printed)
    missing = [text for text in returned + shown + printed if f"> {text}" not in doc]
    assert not missing, "add these to docs/troubleshooting.md:\n" + "\n".join(missing)


def test_class_names_come_from_the_option_the_lessons_metrics_or_their_position(tmp_path):
    model_file = tmp_path / "model.keras"
    assert classifiers.class_names(model_file, 2) == ["class 0", "class 1"]
    assert classifiers.class_names(model_file, 2, "dogs, cats") == ["dogs", "cats"]
    for given in ("cats", "cats,cats", "cats,,dogs", "a,b,c"):
        with pytest.raises(ValueError, match="does not give 2 different names"):
            classifiers.class_names(model_file, 2, given)
    lesson5 = {"train": {"not bird": 3, "bird": 1}, "valid": {"not bird": 1, "bird": 1}}  # in class order
    (tmp_path / "metrics.json").write_text(json.dumps({"class_counts": lesson5}))
    assert classifiers.class_names(model_file, 2) == ["not bird", "bird"]
    (tmp_path / "metrics.json").write_text(json.dumps({"class_counts": {"a": 1, "b": 2, "c": 3}}))
    assert classifiers.class_names(model_file, 2) == ["class 0", "class 1"]  # not this model's classes


def command(argv, capsys):
    """`python -m utils.serve ARGV` run in this process: (status, stderr lines)."""
    status = cli.run(serve.main, argv)
    return status, capsys.readouterr().err.strip().splitlines()


def test_the_command_ends_in_one_line_when_there_is_no_model_to_serve(model_file, tmp_path, capsys, monkeypatch):
    (tmp_path / "damaged.keras").write_text("half a model")
    (tmp_path / "model.h5").write_text("an old format")
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    cases = [([], "no finished run of 03_cnn_from_scratch"),
             (["--model", str(tmp_path / "missing.keras")], "no model at"),
             (["--model", str(tmp_path / "damaged.keras")], "is not a Keras model this version can load"),
             (["--model", str(tmp_path / "model.h5")], "is neither a .keras model file nor a lesson's folder"),
             (["--model", "no_such_lesson"], "no lesson called no_such_lesson: pass 03_cnn_from_scratch or "),
             (["--model", "models/typo.keras"], f"no model at {tmp_path / 'models' / 'typo.keras'}: pass a .keras"),
             (["--model", "01_convolution_filters"], "lesson 01_convolution_filters saves no model: pass 03_cnn_"),
             (["--model", str(model_file), "--classes", "cats,dogs,birds"], "does not give 2 different names")]
    for argv, words in cases:
        status, lines = command(argv + ["--port", str(free_port())], capsys)
        assert status == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    (tmp_path / "copied" / "03_cnn_from_scratch").mkdir(parents=True)  # the default is never the shell's folder
    monkeypatch.chdir(tmp_path / "copied")
    status, lines = command(["--port", str(free_port())], capsys)
    lesson = tmp_path / "models" / "03_cnn_from_scratch"
    assert status == 2 and lines == [f"error: no finished run of 03_cnn_from_scratch in {lesson}: run the lesson "
                                     "(notebooks/03_cnn_from_scratch.ipynb) first, or pass a .keras model file."], lines
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        status, lines = command(["--model", str(model_file), "--port", str(busy.getsockname()[1])], capsys)
    assert status == 2 and len(lines) == 1 and "cannot listen on 127.0.0.1:" in lines[0], lines


@pytest.mark.parametrize("size", ["inf", "-inf", "nan", "0", "1e-7", "1e303"])  # the last: inf bytes
def test_a_max_megabytes_that_is_no_size_above_0_is_refused_in_one_line(size, model_file, capsys, monkeypatch):
    monkeypatch.setattr(serve, "listen", lambda host, port: socket.socket())
    with pytest.raises(SystemExit) as exited:
        cli.run(serve.main, ["--model", str(model_file), "--port", "8123", f"--max-megabytes={size}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and lines[-1] == (f"python -m utils.serve: error: --max-megabytes {float(size):g}: "
                                                    "use a size of at least one byte (0.000001), such as 20"), lines


def test_another_host_than_this_computer_gets_a_warning(model_file, capsys, monkeypatch):
    served = []
    monkeypatch.setattr(serve, "listen", lambda host, port: socket.socket())
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(self.config.app))
    status, lines = command(["--model", str(model_file), "--host", "0.0.0.0", "--port", "8123"], capsys)
    assert status == 0 and len(served) == 1
    assert lines[0].startswith("warning: --host 0.0.0.0: others on your network can open this page")
    assert lines[1].startswith(f"serving {model_file} (cats, dogs) on http://0.0.0.0:8123")
    status, lines = command(["--model", str(model_file), "--port", "8123"], capsys)
    assert status == 0 and len(lines) == 1 and lines[0].startswith("serving")


def test_a_lessons_folder_or_name_serves_its_best_run_as_utils_predict_takes_it(model_file, tmp_path, capsys,
                                                                                 monkeypatch):
    from utils import runs

    served = []
    monkeypatch.setattr(serve, "listen", lambda host, port: socket.socket())
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(self.config.app))
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    full = runs.start("03_cnn_from_scratch", sample=False)
    full.model_path.write_bytes(model_file.read_bytes())
    (full.folder / "metrics.json").write_text(json.dumps({"class_counts": {"dogs": 8, "cats": 8}}))
    runs.finish(full, 0.7, "val_accuracy")
    sample = runs.start("03_cnn_from_scratch", sample=True)  # later, but a sample run: not the one served
    sample.model_path.write_bytes(model_file.read_bytes())
    runs.finish(sample, 0.9, "val_accuracy")
    (tmp_path / "elsewhere").mkdir()
    for folder, given in ((tmp_path, str(tmp_path / "models" / "03_cnn_from_scratch")),
                          (tmp_path, "models/03_cnn_from_scratch"),  # from the shell's folder
                          (tmp_path / "elsewhere", "models/03_cnn_from_scratch"),  # the kit's models/, as predict
                          (tmp_path / "elsewhere", "03_cnn_from_scratch")):  # a lesson's name
        monkeypatch.chdir(folder)
        status, lines = command(["--model", given, "--port", "8123"], capsys)
        assert status == 0 and lines == [f"serving {full.model_path} (the best full run, {full.name}) (cats, dogs) "
                                         "on http://127.0.0.1:8123 (Ctrl-C to stop)"], (given, lines)
    assert len(served) == 4


def test_a_folder_that_is_no_lessons_or_a_lesson_without_a_run_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(paths, "MODELS", tmp_path / "models")
    (tmp_path / "models" / "04_vgg16_finetune").mkdir(parents=True)
    (tmp_path / "photos").mkdir()
    cases = [(tmp_path / "photos", f"error: {tmp_path / 'photos'} is neither a .keras model file nor a lesson's folder "
                                   f"in {tmp_path / 'models'}: pass a .keras model file, or a lesson's folder (such "
                                   "as models/05_bird_classifier) or its name."),
             (tmp_path / "models" / "04_vgg16_finetune",
              f"error: no finished run of 04_vgg16_finetune in {tmp_path / 'models' / '04_vgg16_finetune'}: run the "
              "lesson (notebooks/04_vgg16_finetune.ipynb) first, or pass a .keras model file.")]
    for given, line in cases:
        status, lines = command(["--model", str(given), "--port", str(free_port())], capsys)
        assert status == 2 and lines == [line], lines


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_page_in_a_real_browser(model_file, photo_file, tmp_path):
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "notes.txt").write_text("a shopping list, not a photo\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = tmp_path / "server.log"
    with log.open("w") as output:
        (tmp_path / "tmp").mkdir()
        server = subprocess.Popen([sys.executable, "-m", "utils.serve", "--model", str(model_file),
                                   "--port", str(port)], cwd=paths.ROOT, stderr=output,
                                  env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    playwright = None
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"python -m utils.serve stopped: {log.read_text()}"
            assert time.monotonic() < deadline, "python -m utils.serve did not answer /health within 60 s"
            with contextlib.suppress(OSError):
                if json.loads(get(("127.0.0.1", port), "/health"))["status"] == "ok":
                    break
            time.sleep(0.2)
        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(url)
        expect(page.locator("#model")).to_contain_text("cats, dogs")
        page.set_input_files("#file", str(photo_file))
        expect(page.locator("#result")).to_have_text(re.compile(r"^(cats|dogs): \d{1,3}\.\d%$"), timeout=30_000)
        page.wait_for_function("() => { const image = document.getElementById('heatmap');"
                               " return image.complete && image.naturalWidth > 0 && image.offsetWidth > 0; }")
        page.screenshot(path=os.environ.get("SERVE_PAGE_SCREENSHOT") or tmp_path / "serve_page.png", full_page=True)

        page.set_input_files("#file", str(tmp_path / "notes.txt"))
        expect(page.locator("#error")).to_be_visible(timeout=30_000)
        expect(page.locator("#error")).to_contain_text(
            re.compile(r"^notes\.txt is not an image this kit can read \(.*\); pass a JPEG, PNG, GIF, BMP, WebP, TIFF or AVIF photo\.$"))
        expect(page.locator("#result")).to_be_hidden()

        page.evaluate("""(bytes) => {  // drop the photo on the drop area, as a file dragged from the desktop
            const files = new DataTransfer();
            files.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"}));
            document.getElementById("drop").dispatchEvent(
                new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
        }""", list(photo_file.read_bytes()))
        expect(page.locator("#result")).to_have_text(re.compile(r"^(cats|dogs): \d{1,3}\.\d%$"), timeout=30_000)
        expect(page.locator("#error")).to_be_hidden()
        browser.close()
    finally:
        if playwright is not None:
            playwright.stop()
        server.terminate()  # SIGTERM, as a service manager stops it
        assert server.wait(timeout=30) == 128 + 15
    assert not list((tmp_path / "tmp").iterdir()), "the server left its uploads' folder behind"
