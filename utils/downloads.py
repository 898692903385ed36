"""The course's datasets and how to fetch them (lessons 2 to 5).

`DATASETS` is the registry; `download(name)` fetches a dataset into
`data/NAME/`, resuming a half-finished download, checking the published
checksum and extracting atomically; a second command downloading the same
dataset waits for the first, then finds it there. `python -m utils.data
download NAME` is the same from a terminal. A dataset with a second source lists it in
`OTHER_SOURCES` (`--source kaggle` for dogs vs cats with Kaggle's test set).
"""

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
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import numpy as np
import tqdm

from utils import paths

KAGGLE_COMPETITION = "dogs-vs-cats-redux-kernels-edition"
MICROSOFT_DOGSCATS = ("https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
                      "kagglecatsanddogs_5340.zip")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One entry of the registry.

    Attributes:
        name: the folder under `data/` the dataset goes to.
        source: "http" (an archive or file at `url`) or "kaggle" (the
            competition named in `url`).
        url: the download address, or the Kaggle competition's name.
        files: what `data/NAME/` holds once the dataset is ready.
        checksum: "md5:..." or "sha256:..." of the file at `url`, or "".
        size: approximate download size, for the learner.
        terms: where the licence or terms of use are.
        description: one line about the dataset.
    """

    name: str
    source: str
    url: str
    files: tuple
    checksum: str = ""
    size: str = ""
    terms: str = ""
    description: str = ""


DATASETS = {
    # The archive keras.io and TensorFlow Datasets use; checksum as Hugging Face's
    # cats_vs_dogs records it (824,887,076 bytes).
    "dogscats": Dataset(
        "dogscats", "http", MICROSOFT_DOGSCATS, ("PetImages/Cat", "PetImages/Dog"),
        "sha256:b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9", "825 MB",
        "https://www.microsoft.com/en-us/download/details.aspx?id=54765",
        "Kaggle's 25,000 labelled dogs-vs-cats photos, as Microsoft publishes them (no account needed)."),
    "mnist": Dataset(
        "mnist", "http",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        ("mnist.npz",),
        "sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        "11 MB", "https://creativecommons.org/licenses/by-sa/3.0/",
        "MNIST handwritten digits, 28x28 grey, as Keras ships them."),
    "cifar10": Dataset(
        "cifar10", "http", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"),
        "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        "170 MB", "https://www.cs.toronto.edu/~kriz/cifar.html",
        "CIFAR-10: 60,000 32x32 colour images in 10 classes (the file Keras uses)."),
    "cub200": Dataset(
        "cub200", "http",
        "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
        ("CUB_200_2011/images.txt", "CUB_200_2011/images"),
        "md5:97eceeb196236b17998738112f37df78", "1.1 GB",
        "https://www.vision.caltech.edu/datasets/cub_200_2011/",
        "Caltech-UCSD Birds-200-2011: 11,788 photos of 200 bird species."),
}


OTHER_SOURCES = {
    ("dogscats", "kaggle"): Dataset(
        "dogscats", "kaggle", KAGGLE_COMPETITION, ("train", "test"), "", "850 MB",
        f"https://www.kaggle.com/c/{KAGGLE_COMPETITION}/rules",
        "Kaggle dogs vs cats: 25,000 labelled and 12,500 unlabelled photos (needs a Kaggle account)."),
}


DEFAULT_SOURCE_NAMES = {"dogscats": "microsoft"}


def sources(name):
    """The names of the sources `download` knows for a dataset, the default first."""
    default = DEFAULT_SOURCE_NAMES.get(name, DATASETS[name].source)
    return [default] + [source for dataset, source in OTHER_SOURCES if dataset == name]


class DownloadError(RuntimeError):
    """A download or its checks failed; the message says what to do next."""


def download(name, data_dir=paths.DATA, source=None):
    """Fetches a registered dataset into `data_dir/NAME/` unless it is there.

    Args:
        name: a key of `DATASETS` ("dogscats", "mnist", "cifar10", "cub200").
        data_dir: the folder that holds one folder per dataset.
        source: None for the dataset's default source, or another one it
            lists in `OTHER_SOURCES` (for "dogscats": "kaggle").

    Returns:
        The dataset's folder, a `pathlib.Path`.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    dataset = DATASETS[name]
    if source is not None and source != sources(name)[0]:
        if (name, source) not in OTHER_SOURCES:
            raise ValueError(f"{name} has no source {source!r}: choose one of {', '.join(sources(name))}")
        dataset = OTHER_SOURCES[(name, source)]
    folder = paths.resolve(data_dir) / dataset.name
    if _is_ready(folder, dataset):  # before the lock: a read-only data folder that holds it is fine
        return folder
    # One command at a time fills a dataset's folder: a second one would share the .part file and
    # extract over (or delete) the first one's work. It waits, then finds the dataset ready.
    with paths.locked(folder, f"downloading {dataset.name}"):
        if _is_ready(folder, dataset):
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Downloading {dataset.name} ({dataset.size}); terms of use: {dataset.terms}")
        if dataset.source == "kaggle":
            fetch_kaggle(dataset.url, folder)
        else:
            file_name = urllib.parse.urlsplit(dataset.url).path.rsplit("/", 1)[-1]
            archive = fetch(dataset.url, folder / file_name, dataset.checksum)
            if archive.suffix != ".npz":
                extract(archive, folder)
    print(f"{dataset.name} is ready in {folder}")
    return folder


def _is_ready(folder, dataset):
    """Whether `folder` holds all of `dataset`'s files; says so when it does."""
    if all((folder / file).exists() for file in dataset.files):
        print(f"{dataset.name} is already in {folder}: nothing to download.")
        return True
    return False


def fetch(url, target, checksum="", attempts=3, chunk_size=1 << 16):
    """Downloads `url` to `target`, resuming from `target.part` when it exists.

    Args:
        url: an http(s) address.
        target: where the finished file goes.
        checksum: "md5:HEX" or "sha256:HEX" to verify, or "" for none.
        attempts: how many times a cut connection is resumed before giving up
            (no network, or a server that refuses the connection, fails at once).
        chunk_size: bytes read at a time.

    Returns:
        `target`, once complete and verified.
    """
    target = pathlib.Path(target)
    if target.exists() and verify(target, checksum):
        return target
    part = target.with_name(target.name + ".part")
    for attempt in range(1, attempts + 1):
        try:
            _fetch_once(url, part, chunk_size)
            break
        except (OSError, urllib.error.URLError, DownloadError) as error:
            if isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500:
                raise DownloadError(  # retrying will not help: say what the server said
                    f"the server answered {error.code} {error.reason} for {url}: the file is not "
                    "there (any more). Check for an update of the kit (`git pull`), or report it "
                    "to the course.") from None
            unreachable = _cannot_connect(error)
            if unreachable:  # nothing was cut: trying again at once would fail the same way
                host = urllib.parse.urlsplit(url).hostname
                kept = (f" (the partial file {part} is kept: it resumes from there)"
                        if part.exists() and part.stat().st_size else "")
                said = f"{host}: {getattr(error, 'reason', error)}"
                problem = (f"there is no network connection ({said})" if unreachable == "no network" else
                           f"the server cannot be reached ({said})")
                raise DownloadError(
                    f"cannot download {url}: {problem}; check the internet connection (and any proxy or "
                    f"firewall) and run the same command again{kept}, or download it on another machine and copy "
                    f"it to {target}, then run the same command again.") from None
            if attempt == attempts:
                kept = (f"the partial file {part} is kept: run the same command again to "
                        "resume" if part.exists() and part.stat().st_size else
                        "check the internet connection and run the same command again")
                raise DownloadError(f"could not download {url} ({error}); {kept}.") from error
            print(f"Download interrupted ({error}); resuming (attempt {attempt + 1}).")
    if not verify(part, checksum):
        bad = target.with_name(target.name + ".bad")
        part.replace(bad)
        raise DownloadError(
            f"{url} does not match its published checksum {checksum}. The file was kept as "
            f"{bad} and nothing was extracted. Delete {bad} and run the command again; if it "
            "fails again, the source has changed its file: report it to the course.")
    part.replace(target)
    stale = target.with_name(target.name + ".bad")
    if stale.is_file():  # an earlier download that failed its checksum: this one passed
        stale.unlink()
    return target


def _cannot_connect(error):
    """"no network" or "no server" when `error` says no connection could be made at all, else None.

    A name that cannot be looked up, or no route to any network, means this
    machine is offline; a refused connection means nothing answers at that
    address. Neither is a connection cut midway, which is worth resuming.
    """
    if isinstance(error, urllib.error.HTTPError):
        return None
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    code = getattr(reason, "errno", None)
    if isinstance(reason, socket.gaierror) or code in (errno.ENETUNREACH, errno.ENETDOWN):
        return "no network"
    if isinstance(reason, ConnectionRefusedError) or code in (errno.EHOSTUNREACH, errno.EHOSTDOWN):
        return "no server"
    return None


def _fetch_once(url, part, chunk_size):
    """Downloads into `part`, asking for the missing bytes when it exists."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code != 416:  # 416: nothing left to send, the part is complete
            raise
        return
    with response:
        resumed = response.status == 206
        if offset and not resumed:
            print("The server does not resume downloads: starting again from the beginning.")
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with open(part, "ab" if resumed else "wb") as file, tqdm.tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=part.stem) as bar:
            while chunk := response.read(chunk_size):
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received < total:
        raise DownloadError(f"connection closed after {received:,} of {total:,} bytes")


def verify(path, checksum):
    """Returns whether the file at `path` matches "md5:HEX" / "sha256:HEX" ("" matches)."""
    if not checksum:
        return True
    algorithm, expected = checksum.split(":")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest() == expected


def extract(archive, folder):
    """Extracts a .zip, .tar.gz or .tgz into `folder`, all or nothing.

    The archive is unpacked into a temporary folder inside `folder`, and its
    top-level entries are moved into place only once all of it unpacked.

    Returns:
        The names of the top-level entries now in `folder`.
    """
    archive, folder = pathlib.Path(archive), pathlib.Path(folder)
    staging = _staging_folder(folder)
    try:
        _unpack(archive, staging)
        entries = sorted(staging.iterdir())
        clashes = [entry.name for entry in entries if (folder / entry.name).exists()]
        if clashes:
            raise DownloadError(
                f"{folder} already holds {', '.join(clashes)}, which {archive.name} would "
                "replace. Move them elsewhere and run the command again.")
        for entry in entries:
            entry.rename(folder / entry.name)
        return [entry.name for entry in entries]
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only our own temporary folder


def _staging_folder(folder):
    """A new hidden folder in `folder` to unpack into; removes the ones killed extractions left.

    `download` gets here (through `extract` or `_unpack_kaggle`) holding the
    dataset's lock: no other command is extracting into `folder`, so any
    `.extracting-*` there is a leftover.
    """
    for leftover in folder.glob(".extracting-*"):  # only the kit's own
        shutil.rmtree(leftover, ignore_errors=True)
    return pathlib.Path(tempfile.mkdtemp(prefix=".extracting-", dir=folder))


def _unpack(archive, destination, kept=None):
    """Unpacks one archive, refusing members that would land outside `destination`.

    `kept` is the file the learner has on disk, when `archive` is a member of
    it (Kaggle's train.zip inside the competition's zip): messages name it.
    """
    kept = pathlib.Path(kept or archive)
    print(f"Extracting {archive.name} ...")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(destination)
        else:
            with tarfile.open(archive) as tarred:
                tarred.extractall(destination, filter="data")
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):  # not the archive's fault: keep it
            raise DownloadError(
                f"the disk is full while extracting {kept.name} into {kept.parent} "
                f"({shutil.disk_usage(kept.parent).free / 1e9:.1f} GB free); nothing was "
                f"extracted and {kept.name} is kept. Free some space (`df -h`), then run the same "
                "command again: it extracts without downloading again.") from error
        if error.errno is not None:  # permissions, a read-only disk, ...: the archive is fine
            raise DownloadError(f"could not extract {kept.name} ({error}); nothing was extracted and "
                                f"{kept.name} is kept. Fix the cause, then run the same command again.") from error
        raise DownloadError(
            f"{kept} is damaged ({error}); nothing was extracted. Delete it and run the "
            "command again to download it afresh.") from error
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise DownloadError(
            f"{kept} is damaged ({error}); nothing was extracted. Delete it and run the "
            "command again to download it afresh.") from error


def kaggle_api():
    """Returns the `kaggle` package's API object, not yet authenticated.

    The one place the kit touches the `kaggle` package; the tests replace it.
    """
    from kaggle.api import kaggle_api_extended

    return kaggle_api_extended.KaggleApi()


def kaggle_token_paths(home=None):
    """Where the `kaggle` package looks for kaggle.json, in its order."""
    home = pathlib.Path(home or pathlib.Path.home())
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [pathlib.Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"]
    return [home / ".kaggle" / "kaggle.json", home / ".config" / "kaggle" / "kaggle.json"]


def malformed_kaggle_token(home=None):
    """The kaggle.json the `kaggle` package would read, if it is not a valid token; else None."""
    token = next((path for path in kaggle_token_paths(home) if path.is_file()), None)
    if token is None:
        return None
    try:
        record = json.loads(token.read_text())
    except (OSError, ValueError):
        return token
    return None if isinstance(record, dict) and record.get("username") and record.get("key") else token


def fetch_kaggle(competition, folder):
    """Downloads a Kaggle competition's files and unzips `train.zip` / `test.zip`.

    Args:
        competition: the competition's name, as in its web address.
        folder: where `train/` and `test/` go (for dogscats, flat folders of
            `cat.N.jpg` / `dog.N.jpg` and `N.jpg`).
    """
    rules = f"https://www.kaggle.com/c/{competition}/rules"
    new_token = "kaggle.com > Settings > API > 'Create New Token' downloads a new kaggle.json"
    if not (os.environ.get("KAGGLE_API_TOKEN") or os.environ.get("KAGGLE_USERNAME")):
        broken = malformed_kaggle_token()
        if broken is not None:
            raise DownloadError(f"{broken} is not a valid Kaggle token (it needs JSON with \"username\" "
                                f"and \"key\"): {new_token}; save it over {broken}, then run the command again.")
    archive = folder / f"{competition}.zip"
    if archive.is_file():  # downloaded before, not yet unpacked (a full disk, say): unpack it again
        _unpack_kaggle(archive, folder)
        return
    api, said = None, io.StringIO()
    try:  # the package prints its own banner (and may exit) when it finds no credentials: the kit says it once
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            api = kaggle_api()
            api.authenticate()
    except (SystemExit, OSError) as error:
        where = getattr(api, "config", None) or kaggle_token_paths()[0]
        raise DownloadError(
            f"Kaggle credentials not found. {new_token}: put it at {where} and run `chmod 600 {where}`; "
            "or set the environment variables KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN). "
            f"Accept the competition rules at {rules}, then run the command again. (No account? "
            "`python -m utils.data download dogscats` gets the labelled photos from Microsoft.)") from None
    try:
        api.competition_download_files(competition, path=str(folder), quiet=False)
    except Exception as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403) or getattr(error, "status", None) in (401, 403):
            raise DownloadError(
                f"Kaggle refused the download ({status or error.status}): accept the "
                f"competition rules at {rules} while logged in as the account whose token "
                "you use, then run the command again.") from None
        if isinstance(error, OSError) or "ConnectionError" in type(error).__name__ or "Timeout" in type(
                error).__name__:  # requests' connection errors are OSErrors; some wrappers are not
            raise DownloadError(
                f"could not reach Kaggle ({type(error).__name__}): check the internet connection, then "
                "run the same command again.") from None
        raise
    _unpack_kaggle(archive, folder)


def _unpack_kaggle(archive, folder):
    """Unpacks the competition's zip and the train.zip / test.zip inside it into `folder`."""
    staging = _staging_folder(folder)
    try:  # all or nothing: every inner zip is unpacked before any folder is moved into place
        _unpack(archive, staging)
        ready = {}
        for inner in sorted(staging.glob("*.zip")):  # train.zip -> train/, test.zip -> test/
            unpacked = staging / inner.stem
            _unpack(inner, unpacked, kept=archive)
            nested = unpacked / inner.stem
            ready[inner.stem] = nested if nested.is_dir() and len(list(unpacked.iterdir())) == 1 else unpacked
        clashes = [name for name in ready if (folder / name).exists()]
        if clashes:
            raise DownloadError(f"{', '.join(str(folder / name) for name in clashes)} already exists: move "
                                "it elsewhere and run the command again.")
        for name, unpacked in ready.items():
            unpacked.rename(folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # only our own temporary folder


def load_mnist(data_dir=paths.DATA):
    """Loads MNIST from `data/mnist/mnist.npz` (Keras' file and format), lesson 2.

    Returns:
        `((x_train, y_train), (x_test, y_test))` as uint8 NumPy arrays, like
        `keras.datasets.mnist.load_data()`.
    """
    path = paths.resolve(data_dir) / "mnist" / "mnist.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run `python -m utils.data download mnist` first.")
    with np.load(path, allow_pickle=False) as arrays:
        return ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]))
