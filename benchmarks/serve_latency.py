"""How long `python -m utils.serve` takes to answer a photo, once warmed up (lesson 6).

    .venv/bin/python benchmarks/serve_latency.py --model models/03_cnn_from_scratch/runs/<run>/model.keras \\
        --photo ../shared/data/dogscats-dev/train/dog.3848.jpg

Starts the server as a subprocess (`python -m utils.serve --model MODEL --port <a free port>`), waits for
/health, then times POST /predict with the photo as a browser sends it (a multipart form, a new connection
each time, one request after another): 5 warm-up requests, then --requests timed ones, from the first byte
sent to the last byte of the answer read. It does this twice: plain /predict, and /predict?explain=1 (with
the Grad-CAM overlay, as the page asks). Writes median, p90, min and max milliseconds of each, the photo's
size, the model, the command, the machine and the date to `benchmarks/results/serve_latency.json` and prints
them. The issue's target: under 200 ms per request after warm-up on the kit's 2-core CPU.
"""

import argparse
import datetime
import http.client
import json
import os
import pathlib
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
WARM_UP = 5
TARGET_MS = 200


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask(port, path, photo_bytes, photo_name):
    """One POST of the photo; returns (milliseconds, status, answer)."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{photo_name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo_bytes + f"\r\n--{boundary}--\r\n".encode()
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", path, body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    response = connection.getresponse()
    text = response.read()
    milliseconds = (time.perf_counter() - start) * 1000
    connection.close()
    return milliseconds, response.status, json.loads(text)


def summary(times):
    times = np.asarray(times)
    return {"median_ms": round(float(np.median(times)), 1), "p90_ms": round(float(np.percentile(times, 90)), 1),
            "min_ms": round(float(times.min()), 1), "max_ms": round(float(times.max()), 1),
            "under_target": bool(np.median(times) < TARGET_MS)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the .keras model to serve")
    parser.add_argument("--photo", required=True, type=pathlib.Path, help="the photo to send")
    parser.add_argument("--requests", type=int, default=50, help="timed requests of each kind (default: 50)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results" / "serve_latency.json")
    args = parser.parse_args(argv)

    photo_bytes = args.photo.read_bytes()
    with Image.open(args.photo) as photo:
        width, height = photo.size
    port = free_port()
    server_command = [sys.executable, "-m", "utils.serve", "--model", args.model, "--port", str(port)]
    started = time.perf_counter()
    log = tempfile.TemporaryFile("w+")  # the server's output, read if it stops
    server = subprocess.Popen(server_command, cwd=ROOT, stderr=log)
    try:
        while True:  # until /health answers
            if server.poll() is not None:
                log.seek(0)
                sys.exit(f"the server stopped: {log.read().strip()}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/health")
                health = json.loads(connection.getresponse().read())
                connection.close()
                break
            except OSError:
                time.sleep(0.1)
        startup_seconds = time.perf_counter() - started
        print(f"server ready in {startup_seconds:.1f} s: {health}", flush=True)
        results = {}
        for name, path in (("predict", "/predict"), ("predict_explain", "/predict?explain=1")):
            times = []
            for attempt in range(WARM_UP + args.requests):
                milliseconds, status, answer = ask(port, path, photo_bytes, args.photo.name)
                if status != 200:
                    sys.exit(f"{path} answered {status}: {answer}")
                if attempt >= WARM_UP:
                    times.append(milliseconds)
            results[name] = {**summary(times), "answer": {"label": answer["label"],
                                                          "probability": round(answer["probability"], 4)}}
            if "heatmap" in answer:
                results[name]["heatmap_bytes"] = len(answer["heatmap"])
            print(f"{path}: {results[name]}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    report = {
        "benchmark": "benchmarks/serve_latency.py",
        "command": "python " + " ".join(["benchmarks/serve_latency.py"] + list(argv or sys.argv[1:])),
        "what": f"POST /predict of one photo to `python -m utils.serve` on 127.0.0.1, one request at a time on a "
                f"new connection each, {WARM_UP} warm-up requests then {args.requests} timed ones (first byte sent "
                "to answer read), plain and with ?explain=1 (Grad-CAM overlay); target: median under "
                f"{TARGET_MS} ms",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_after": [round(load, 2) for load in os.getloadavg()]},
        "model": args.model,
        "classes": health["classes"],
        "photo": {"path": str(args.photo), "width": width, "height": height, "bytes": len(photo_bytes)},
        "server_command": " ".join(["python", "-m", "utils.serve", "--model", args.model, "--port", "<free>"]),
        "startup_seconds": round(startup_seconds, 1),
        "requests": args.requests,
        "warm_up": WARM_UP,
        **results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
