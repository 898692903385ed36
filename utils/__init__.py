"""Helpers shared by the course's lessons.

Import by module, so a reader always sees where a helper comes from::

    from utils import plots
    plots.show_images(images, titles)

Modules:
    paths:   where the kit keeps data, models and build output.
    safely:  writing files all or nothing, leaving read-only ones alone, one writer at a time.
    plots:   image grids and figures (lesson 1 onwards).
    lessons: the lesson runner behind `make lessons` (`python -m utils.lessons`).
    copies:  which executed copies the runner may replace (never a learner's file); cleaning notebooks.
    interrupts: Ctrl-C in the lesson runner: one line, the kernel stopped in order, no half-written copy.
    downloads: the dataset registry and checksum-verified, resumable downloads.
    data:    organize photos into train/valid/test folders (`python -m utils.data`).
    layouts: recognize the photo layouts learners have (Kaggle, fast.ai, PetImages, class folders).
    runs:    one folder per training run; which run is the latest and the best.
    images:  find bad and odd image files; one photo file as model input (`load_photo`).
    doctor:  `python -m utils.doctor`: is this machine ready for the course?
    cli:     how every command line ends: one line and a non-zero status, never a traceback; path arguments.
    hardware: CPU, one GPU, several GPUs or machines: the strategy, mixed precision and batch size.
    resume:  backing training up every epoch, so an interrupted run carries on where it stopped.
    training: fit with early stopping and checkpoints; devices; metrics files (lesson 3).
    schedules: a learning-rate schedule planned over a time budget (lesson 3).
    evaluate: predictions, error-analysis panels, reports, Kaggle submissions (lesson 3).
    explain: what a network looks at: kernels, feature maps and Grad-CAM (lesson 3).
    pipeline: a folder of class folders as cached, shuffled, augmented batches (lesson 3).
    digits:  handwritten digits, MNIST or scikit-learn's (lesson 2).
    synth:   the drawn stand-in datasets, toy_pets and toy_birds, for running offline.
    transfer: VGG16 with its preprocessing inside, and cached bottleneck features (lesson 4).
    birds:   the bird / not-bird data from CIFAR-10 and CUB-200 (lesson 5).
    array_pipeline: in-memory images as cached, shuffled, augmented batches (lesson 5).
    predict: `python -m utils.predict`: is it a bird? for any photo (lesson 5), with `classifiers`.
    exercises: the lessons' self-checking exercises (`exercises.check`).
    publish: `make exercises`, `make slides`, `make site`: learner copies, decks and the course site.
    slides:  which cells start a slide, and the reveal.js decks.
    outputs: what decks and site pages show of a lesson: no solutions, stderr or local paths.
    serve:   `python -m utils.serve`: a web page that asks a trained classifier about your photos (lesson 6).
    classifiers: a lesson's trained model found and checked; its classes, threshold, photo preparation; serve's.
"""

import importlib.util
import os
import ssl
import sys

_MISSING = [name for name in ("numpy", "tqdm", "PIL", "keras", "tensorflow") if importlib.util.find_spec(name) is None]
if _MISSING and sys.argv[:1] == ["-m"]:  # `python -m utils.…` run by a Python without the kit's packages
    print(f"error: {sys.executable} does not have the kit's packages ({', '.join(_MISSING)} missing): run the "
          "command with .venv/bin/python, from the kit's folder (`make lessons` or `make lab` creates it), or "
          "activate it first: `source .venv/bin/activate`.", file=sys.stderr)
    sys.exit(2)

# python.org's Python for macOS has no certificate authorities until its "Install Certificates.command" is run, so
# every HTTPS download (datasets, VGG16's weights) would fail with CERTIFICATE_VERIFY_FAILED. Use certifi's, as pip
# and requests do (and as that command would); a learner's own SSL_CERT_FILE or SSL_CERT_DIR is left alone.
if (sys.platform == "darwin" and not os.environ.get("SSL_CERT_FILE") and not os.environ.get("SSL_CERT_DIR")
        and not os.path.exists(ssl.get_default_verify_paths().openssl_cafile) and importlib.util.find_spec("certifi")):
    import certifi
    os.environ["SSL_CERT_FILE"] = certifi.where()
