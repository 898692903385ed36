"""The course's datasets and how to fetch them (lessons 2 to 5): `python -m utils.data download NAME`."""

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import os
import pathlib
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import tqdm

from utils import paths, safely


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One entry of the registry."""

    name: str  # the folder under data/ the dataset goes to
    source: str  # "kaggle" (the competition named in `url`), else a plain download: "microsoft" or "http"
    url: str  # the download address, or the Kaggle competition's name
    files: tuple  # what data/NAME/ holds once the dataset is ready
    checksum: str = ""  # "md5:HEX" or "sha256:HEX" of the file at `url`, or ""
    size: str = ""  # approximate download size, for the learner
    terms: str = ""  # where the licence or terms of use are


DATASETS = {
    "dogscats": Dataset(  # Kaggle's 25,000 labelled photos, as Microsoft publishes them (no account needed)
        "dogscats", "microsoft", "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
        "kagglecatsanddogs_5340.zip", ("PetImages/Cat", "PetImages/Dog"),
        "sha256:b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9", "825 MB",
        "https://www.microsoft.com/en-us/download/details.aspx?id=54765"),
    "mnist": Dataset(  # handwritten digits, 28x28 grey, as Keras ships them
        "mnist", "http", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz", ("mnist.npz",),
        "sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1", "11 MB",
        "https://creativecommons.org/licenses/by-sa/3.0/"),
    "cifar10": Dataset(  # 60,000 32x32 colour images in 10 classes (the file Keras uses)
        "cifar10", "http", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"),
        "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", "170 MB",
        "https://www.cs.toronto.edu/~kriz/cifar.html"),
    "cub200": Dataset(  # Caltech-UCSD Birds-200-2011: 11,788 photos of 200 bird species
        "cub200", "http", "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
        ("CUB_200_2011/images.txt", "CUB_200_2011/images"), "md5:97eceeb196236b17998738112f37df78", "1.1 GB",
        "https://www.vision.caltech.edu/datasets/cub_200_2011/"),
}

OTHER_SOURCES = {
    ("dogscats", "kaggle"): Dataset(  # 25,000 labelled and 12,500 unlabelled photos (needs a Kaggle account)
        "dogscats", "kaggle", "dogs-vs-cats-redux-kernels-edition", ("train", "test"), "", "850 MB",
        "https://www.kaggle.com/c/dogs-vs-cats-redux-kernels-edition/rules"),
}

NEW_KAGGLE_TOKEN = ('on https://www.kaggle.com/settings/api, "Generate New Token" under "API", and save the token in '
                    "~/.kaggle/access_token (`chmod 600` it) or set KAGGLE_API_TOKEN to it")  # as `kaggle`'s help says
# lesson 4's VGG16 (without, with its dense layers), which Keras fetches into ~/.keras/models/ itself
VGG16_WEIGHTS = {False: ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "about 59 MB"),
                 True: ("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "about 553 MB")}


class DownloadError(RuntimeError):
    """A download or its checks failed; the message says what to do next."""


def download(name, data_dir=paths.DATA, source=None):
    """Fetches dataset `name` (a key of `DATASETS`) into `data_dir/NAME/` unless it is there; returns that folder.

    Args:
        source: None for the dataset's default source, or one of its `OTHER_SOURCES` ("kaggle" for dogscats).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    sources = [DATASETS[name].source] + [s for n, s in OTHER_SOURCES if n == name]
    if source not in (None, *sources):
        raise ValueError(f"{name} has no source {source!r}: choose one of {', '.join(sources)}")
    dataset = OTHER_SOURCES.get((name, source), DATASETS[name])
    folder = paths.resolve(data_dir) / dataset.name
    if _is_ready(folder, dataset):  # before the lock: a read-only data folder that holds it is fine
        return folder
    # A second command waits here, then finds the dataset ready (sharing the .part, it would spoil the first's work).
    with safely.locked(folder, f"downloading {dataset.name}"):
        if _is_ready(folder, dataset):
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Downloading {dataset.name} ({dataset.size}); terms of use: {dataset.terms}")
        if dataset.source == "kaggle":
            archive = fetch_kaggle(dataset.url, folder)
        else:
            file_name = pathlib.PurePosixPath(urllib.parse.urlsplit(dataset.url).path).name
            archive = fetch(dataset.url, folder / file_name, dataset.checksum)
        if archive.suffix != ".npz":  # MNIST stays one file, which `utils.digits.load` reads
            extract(archive, folder, inner_zips=dataset.source == "kaggle")
    print(f"{dataset.name} is ready in {folder}")
    return folder


def _is_ready(folder, dataset):
    """Whether `folder` holds all of `dataset`'s files; a download there, if still needed, must be the published one."""
    ready = all((folder / file).exists() for file in dataset.files)
    archive = folder / pathlib.PurePosixPath(urllib.parse.urlsplit(dataset.url).path).name
    if (archive.name in dataset.files or not ready) and archive.is_file() and not verify(archive, dataset.checksum):
        raise DownloadError(f"{archive} is not the file {dataset.name} publishes (its checksum is not "
                            f"{dataset.checksum}): move it out of {folder} and run the same command again to "
                            "download it, or copy the right file there.")  # the kit leaves only checked files
    if ready:  # (an unpacked archive is not hashed again: 1 GB at every lesson)
        print(f"{dataset.name} is already in {folder}: nothing to download.")
    return ready


def fetch(url, target, checksum="", attempts=3):
    """Downloads `url` to the path `target` through `target.part`, resuming that when it exists; returns `target`.

    Args:
        checksum: "md5:HEX", "sha256:HEX" or "".
        attempts: tries in all, later ones resuming a cut connection; no network or a refused connection fails at once.
    """
    if target.exists() and verify(target, checksum):
        return target
    part, bad = target.with_name(target.name + ".part"), target.with_name(target.name + ".bad")
    for attempt in range(1, attempts + 1):
        try:
            offset = part.stat().st_size if part.exists() else 0  # ask only for the missing bytes
            request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
            with urllib.request.urlopen(request, timeout=60) as response:
                if offset and response.status != 206:
                    print("The server does not resume downloads: starting again from the beginning.")
                    offset = 0
                length = response.headers.get("Content-Length")
                total = offset + int(length) if length is not None else None
                with open(part, "ab" if offset else "wb") as file, tqdm.tqdm.wrapattr(
                        file, "write", total=total, initial=offset, bytes=False, unit="B", unit_scale=True,
                        desc=part.stem) as progress:
                    shutil.copyfileobj(response, progress)
            if total is not None and part.stat().st_size < total:
                raise ConnectionError(f"connection closed after {part.stat().st_size:,} of {total:,} bytes")
            break
        except OSError as error:  # urllib's URLError and HTTPError are OSErrors
            if isinstance(error, urllib.error.HTTPError) and error.code == 416:  # nothing left to send
                break
            if isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500:
                raise DownloadError(  # retrying will not help: say what the server said
                    f"the server answered {error.code} {error.reason} for {url}: the file is not there (any more). "
                    "Check for an update of the kit (`git pull`), or report it to the course.") from None
            kept = part.exists() and part.stat().st_size > 0
            reason = getattr(error, "reason", error)  # a URLError wraps the socket's error
            code, said = getattr(reason, "errno", None), f" ({urllib.parse.urlsplit(url).hostname}: {reason})"
            offline = isinstance(reason, socket.gaierror) or code in (errno.ENETUNREACH, errno.ENETDOWN)
            if offline or isinstance(reason, ConnectionRefusedError) or code in (errno.EHOSTUNREACH, errno.EHOSTDOWN):
                problem = ("there is no network connection" if offline else "the server cannot be reached") + said
                resumes = f" (the partial file {part} is kept: it resumes from there)" if kept else ""
                raise DownloadError(
                    f"cannot download {url}: {problem}; check the internet connection (and any proxy or firewall) "
                    f"and run the same command again{resumes}, or download it on another machine and copy it to "
                    f"{target}, then run the same command again.") from None
            if attempt == attempts:
                advice = (f"the partial file {part} is kept: run the same command again to resume" if kept
                          else "check the internet connection and run the same command again")
                raise DownloadError(f"could not download {url} ({error}); {advice}.") from error
            print(f"Download interrupted ({error}); resuming (attempt {attempt + 1}).")
    if not verify(part, checksum):
        part.replace(bad)
        raise DownloadError(
            f"{url} does not match its published checksum {checksum}. The file was kept as {bad} and nothing was "
            f"extracted. Delete {bad} and run the command again; if it fails again, the source has changed its "
            "file: report it to the course.")
    part.replace(target)
    bad.unlink(missing_ok=True)  # an earlier download that failed its checksum: this one passed
    return target


def verify(path, checksum):
    """Returns whether the file at `path` matches "md5:HEX" / "sha256:HEX" ("" matches)."""
    algorithm, _, expected = checksum.partition(":")
    with open(path, "rb") as file:
        return not checksum or hashlib.file_digest(file, algorithm).hexdigest() == expected


def extract(archive, folder, inner_zips=False):
    """Extracts a .zip, .tar.gz or .tgz into the path `folder`, all or nothing, replacing nothing there.

    Args:
        inner_zips: unpack each .zip the archive holds into a folder of its name instead (Kaggle: train.zip -> train/).
    """
    for leftover in folder.glob(".extracting-*"):  # the kit's own, left by a killed run (`download` holds the lock)
        shutil.rmtree(leftover, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".extracting-", dir=folder, ignore_cleanup_errors=True) as staging:
        staging = pathlib.Path(staging)
        try:
            _unpack(archive, staging)
            entries = {entry.name: entry for entry in sorted(staging.iterdir())}
            if inner_zips:
                entries = {}
                for inner in sorted(staging.glob("*.zip")):
                    _unpack(inner, staging / inner.stem)
                    nested = staging / inner.stem / inner.stem  # train.zip holds train/: not train/train/
                    alone = nested.is_dir() and len(list(nested.parent.iterdir())) == 1
                    entries[inner.stem] = nested if alone else nested.parent
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
            if getattr(error, "errno", None) is not None:  # a full disk, permissions, ...: the archive is fine
                raise DownloadError(
                    f"could not extract {archive.name} ({error}); nothing was extracted and {archive.name} is kept. "
                    "Fix the cause (a full disk: free some space, `df -h`), then run the same command again: it "
                    "extracts without downloading again.") from error
            raise DownloadError(f"{archive} is damaged ({error}); nothing was extracted. Delete it and run the "
                                "command again to download it afresh.") from error
        if clashes := [name for name in entries if (folder / name).exists()]:
            raise DownloadError(f"{folder} already holds {', '.join(clashes)}, which {archive.name} would replace. "
                                "Move them elsewhere and run the command again.")
        for name, entry in entries.items():
            entry.rename(folder / name)


def _unpack(archive, destination):
    """Unpacks one zip or tar archive into `destination`; a member that would land outside it is refused."""
    print(f"Extracting {archive.name} ...")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(destination)
    else:
        with tarfile.open(archive) as tarred:  # PEP 706's "data" filter is in Python 3.11.4 on, not in older 3.11s
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # else: it passed its checksum
            tarred.extractall(destination, **safe)


def kaggle_api():
    """Returns the `kaggle` package's API object, not yet authenticated (the tests replace this)."""
    from kaggle.api import kaggle_api_extended
    return kaggle_api_extended.KaggleApi()


def kaggle_token(home=None):
    """The kaggle.json the `kaggle` package reads, by its own rule: in $KAGGLE_CONFIG_DIR, else in ~/.kaggle when that
    folder exists (and always off Linux), else in $XDG_CONFIG_HOME/kaggle or ~/.config/kaggle."""
    home = pathlib.Path(home or pathlib.Path.home())
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return pathlib.Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    if (home / ".kaggle").exists() or not sys.platform.startswith("linux"):
        return home / ".kaggle" / "kaggle.json"
    return pathlib.Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle" / "kaggle.json"


def valid_kaggle_token(token):
    """Whether the file `token` holds a Kaggle token: JSON with a "username" and a "key"."""
    try:
        record = json.loads(token.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and bool(record.get("username") and record.get("key"))


def fetch_kaggle(competition, folder):
    """Downloads a Kaggle competition's zip (dogscats: train.zip, test.zip) into `folder` unless there; returns it."""
    rules = f"https://www.kaggle.com/c/{competition}/rules"
    archive = folder / f"{competition}.zip"
    if archive.is_file():  # downloaded before, not yet unpacked (a full disk, say): unpack it again
        return archive
    try:  # the package prints its own help (and exits) when it finds no credentials: the kit says it once
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            api = kaggle_api()
            api.authenticate()
    except (SystemExit, OSError) as error:
        if any(kind.__name__ in ("ConnectionError", "Timeout") for kind in type(error).__mro__):  # checking a token
            raise DownloadError(f"could not reach Kaggle ({type(error).__name__}): check the internet connection, "
                                "then run the same command again.") from None
        token = kaggle_token()  # the older kind of token, where the package reads it
        if token.is_file() and not valid_kaggle_token(token):  # the package passes over it without a word
            raise DownloadError(f"{token} is not a valid Kaggle token (it needs JSON with \"username\" and \"key\"), "
                                f"and no other Kaggle credentials were found: {NEW_KAGGLE_TOKEN}; move {token} away, "
                                "then run the command again.") from None
        raise DownloadError(  # the package passes over a token Kaggle refuses too (expired, revoked), without a word
            f"Kaggle credentials not found, or not accepted: {NEW_KAGGLE_TOKEN} (a new one if you had one), or run "
            f"`.venv/bin/kaggle auth login`; an older kaggle.json works too, at {token} (`chmod 600 {token}`), as do "
            f"KAGGLE_USERNAME and KAGGLE_KEY. Accept the competition rules at {rules}, then run the command again. "
            "(No account? `python -m utils.data download dogscats` gets the labelled photos from Microsoft.)") from None
    try:
        api.competition_download_files(competition, path=str(folder), quiet=False)
    except Exception as error:  # requests' errors carry the HTTP answer in .response, the older client's in .status
        status = getattr(getattr(error, "response", None), "status_code", None) or getattr(error, "status", None)
        if status in (401, 403):
            raise DownloadError(f"Kaggle refused the download ({status}): accept the competition rules at {rules} "
                                "while logged in as the account whose token you use, then run the command "
                                "again.") from None
        kind = type(error).__name__  # requests' connection errors are OSErrors; some wrappers are not
        if isinstance(error, OSError) or "ConnectionError" in kind or "Timeout" in kind:
            raise DownloadError(f"could not reach Kaggle ({kind}): check the internet connection, then run the "
                                "same command again.") from None
        raise
    return archive
