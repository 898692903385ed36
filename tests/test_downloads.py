"""The download path against an HTTP server on 127.0.0.1, and Kaggle through a fake client."""

import dataclasses
import errno
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile

import numpy as np
import PIL.Image
import pytest
import requests

from utils import cli, data, digits, downloads, paths


class ArchiveHandler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files`, honouring Range unless told not to, cutting when told to, holding when told to."""

    def do_GET(self):
        server = self.server
        body = server.files.get(self.path)
        range_header = self.headers.get("Range")
        server.requests.append((self.path, range_header))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if range_header and server.honour_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if server.gate is not None:  # the body waits until the test opens the gate
            server.gate.wait(timeout=30)
        payload = body[start:]
        if server.cuts_left > 0:  # send part of the body, then drop the connection
            server.cuts_left -= 1
            payload = payload[: len(payload) // 3]
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ArchiveHandler)
    httpd.files, httpd.requests, httpd.honour_range, httpd.cuts_left, httpd.gate = {}, [], True, 0, None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def make_tgz(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def make_zip(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# Random bytes do not compress, so the archive is large enough to be cut midway.
BIRD_FILES = {
    "BIRDS/images.txt": b"1 001.Albatross/a.jpg\n",
    "BIRDS/images/001.Albatross/a.jpg": np.random.default_rng(0).bytes(200_000),
    "attributes.txt": b"1 has_bill_shape\n",
}


def register(monkeypatch, server, archive, checksum=None, name="birds.tgz"):
    server.files[f"/{name}"] = archive
    if checksum is None:
        checksum = "md5:" + hashlib.md5(archive).hexdigest()
    dataset = downloads.Dataset("toybirds", "http", f"{server.base}/{name}",
                                ("BIRDS/images.txt", "BIRDS/images"), checksum)
    monkeypatch.setitem(downloads.DATASETS, "toybirds", dataset)


def test_download_extracts_and_second_call_is_a_no_op(server, monkeypatch, tmp_path, capsys):
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    folder = downloads.download("toybirds", data_dir=tmp_path)
    assert folder == tmp_path / "toybirds"
    for name, content in BIRD_FILES.items():
        assert (folder / name).read_bytes() == content
    assert sorted(p.name for p in folder.iterdir()) == ["BIRDS", "attributes.txt", "birds.tgz"]

    server.requests.clear()
    capsys.readouterr()
    downloads.download("toybirds", data_dir=tmp_path)
    assert server.requests == []
    assert "nothing to download" in capsys.readouterr().out


def test_download_resumes_after_the_connection_is_cut(server, monkeypatch, tmp_path):
    archive = make_tgz(BIRD_FILES)
    register(monkeypatch, server, archive)
    server.cuts_left = 1
    folder = downloads.download("toybirds", data_dir=tmp_path)
    assert (folder / "birds.tgz").read_bytes() == archive
    (first_path, first_range), (_, second_range) = server.requests
    assert first_range is None
    assert second_range == f"bytes={len(archive) // 3}-"
    assert (folder / "BIRDS/images/001.Albatross/a.jpg").exists()


def test_repeated_cuts_keep_the_partial_file_for_the_next_run(server, monkeypatch, tmp_path):
    archive = make_tgz(BIRD_FILES)
    register(monkeypatch, server, archive)
    server.cuts_left = 3
    with pytest.raises(downloads.DownloadError, match="is kept: run the same command again"):
        downloads.download("toybirds", data_dir=tmp_path)
    part = tmp_path / "toybirds" / "birds.tgz.part"
    kept = part.stat().st_size
    assert 0 < kept < len(archive)
    assert not (tmp_path / "toybirds" / "BIRDS").exists()
    downloads.download("toybirds", data_dir=tmp_path)
    assert server.requests[-1] == ("/birds.tgz", f"bytes={kept}-")
    assert (tmp_path / "toybirds" / "birds.tgz").read_bytes() == archive


def test_partial_file_left_by_an_earlier_run_is_resumed(server, monkeypatch, tmp_path):
    archive = make_tgz(BIRD_FILES)
    register(monkeypatch, server, archive)
    (tmp_path / "toybirds").mkdir()
    (tmp_path / "toybirds" / "birds.tgz.part").write_bytes(archive[:1000])
    downloads.download("toybirds", data_dir=tmp_path)
    assert server.requests == [("/birds.tgz", "bytes=1000-")]
    assert (tmp_path / "toybirds" / "birds.tgz").read_bytes() == archive


def test_a_whole_partial_file_left_by_a_killed_run_is_checked_and_kept_not_fetched_again(server, monkeypatch,
                                                                                         tmp_path):
    # killed after the last byte, before the rename: the server answers 416 (nothing left to send)
    archive = make_tgz(BIRD_FILES)
    register(monkeypatch, server, archive)
    (tmp_path / "toybirds").mkdir()
    (tmp_path / "toybirds" / "birds.tgz.part").write_bytes(archive)
    downloads.download("toybirds", data_dir=tmp_path)
    assert server.requests == [("/birds.tgz", f"bytes={len(archive)}-")]
    assert (tmp_path / "toybirds" / "birds.tgz").read_bytes() == archive
    assert (tmp_path / "toybirds" / "BIRDS" / "images.txt").read_bytes() == BIRD_FILES["BIRDS/images.txt"]


def test_server_that_ignores_range_restarts_from_the_beginning(server, monkeypatch, tmp_path,
                                                               capsys):
    archive = make_tgz(BIRD_FILES)
    register(monkeypatch, server, archive)
    server.honour_range = False
    (tmp_path / "toybirds").mkdir()
    (tmp_path / "toybirds" / "birds.tgz.part").write_bytes(b"stale bytes from elsewhere")
    downloads.download("toybirds", data_dir=tmp_path)
    assert (tmp_path / "toybirds" / "birds.tgz").read_bytes() == archive
    assert "does not resume downloads: starting again" in capsys.readouterr().out


@pytest.mark.parametrize("wrong", ["all of it", "its last digit"])
def test_checksum_mismatch_is_a_clear_error_and_extracts_nothing(server, monkeypatch, tmp_path, wrong):
    archive = make_tgz(BIRD_FILES)
    right = hashlib.md5(archive).hexdigest()
    digits = "0" * 32 if wrong == "all of it" else right[:-1] + ("0" if right[-1] != "0" else "1")
    register(monkeypatch, server, archive, checksum="md5:" + digits)
    folder = tmp_path / "toybirds"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(downloads.DownloadError, match="does not match its published checksum"
                       ) as raised:
        downloads.download("toybirds", data_dir=tmp_path)
    assert "Delete" in str(raised.value) and "run the command again" in str(raised.value)
    assert sorted(p.name for p in folder.iterdir()) == ["birds.tgz.bad", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_damaged_archive_leaves_no_half_extracted_folder(server, monkeypatch, tmp_path):
    archive = make_tgz(BIRD_FILES)
    damaged = archive[: len(archive) // 2]  # a valid start, then nothing: fails midway
    register(monkeypatch, server, damaged)
    with pytest.raises(downloads.DownloadError, match="damaged"):
        downloads.download("toybirds", data_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "toybirds").iterdir()) == ["birds.tgz"]


@pytest.mark.skipif(not hasattr(tarfile, "data_filter"), reason="PEP 706's filter: Python 3.11.4 on")
@pytest.mark.parametrize("member", ["../../escaped.txt", "BIRDS/../../../escaped.txt"])
def test_an_archive_member_that_would_land_outside_the_folder_is_refused(server, monkeypatch, tmp_path, member):
    # it passed its checksum, but a path out of the extraction folder is refused all the same (the "data" filter)
    register(monkeypatch, server, make_tgz({**BIRD_FILES, member: b"written outside"}))
    with pytest.raises(downloads.DownloadError, match="is damaged .*nothing was extracted"):
        downloads.download("toybirds", data_dir=tmp_path)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert sorted(p.name for p in (tmp_path / "toybirds").iterdir()) == ["birds.tgz"]


def test_a_404_is_reported_once_as_missing_not_as_a_cut_connection(server, monkeypatch, tmp_path, capsys):
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    server.files.clear()  # the address now answers 404
    with pytest.raises(downloads.DownloadError, match="answered 404") as raised:
        downloads.download("toybirds", data_dir=tmp_path)
    assert "internet connection" not in str(raised.value)
    assert "resuming" not in capsys.readouterr().out
    assert len(server.requests) == 1


def test_two_downloads_of_one_dataset_at_once_the_second_waits_then_finds_it_ready(server, tmp_path):
    """Two terminals download the same dataset: one downloads and extracts it all, the other waits for it."""
    files = {f"BIRDS/images/{i:03}.jpg": np.random.default_rng(i).bytes(2_000) for i in range(400)}
    files["BIRDS/images.txt"] = "".join(f"{i} {i:03}.jpg\n" for i in range(400)).encode()
    archive = make_tgz(files)
    server.files["/birds.tgz"] = archive
    server.gate = threading.Event()  # the first is still downloading when the second starts
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(paths.ROOT)!r})
        from utils import cli, data, downloads
        downloads.DATASETS["toybirds"] = downloads.Dataset(
            "toybirds", "http", {server.base + "/birds.tgz"!r}, ("BIRDS/images.txt", "BIRDS/images"),
            {"md5:" + hashlib.md5(archive).hexdigest()!r})
        sys.exit(cli.run(data.main, ["download", "toybirds", "--data-dir", {str(tmp_path)!r}],
                         expected=data.EXPECTED))
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    for _ in range(200):  # until the first is downloading
        if server.requests:
            break
        time.sleep(0.05)
    said = tmp_path / "second.out"
    with open(said, "w") as out:
        second = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=subprocess.PIPE, text=True)
        for _ in range(200):  # until the second waits (or has had 10 s to)
            if "Waiting" in said.read_text():
                break
            time.sleep(0.05)
        server.gate.set()
        first_out, first_err = first.communicate(timeout=120)
        second_err = second.communicate(timeout=120)[1]
    assert (first.returncode, second.returncode) == (0, 0), first_err + second_err
    folder = tmp_path / "toybirds"
    assert f"toybirds is ready in {folder}" in first_out
    assert f"Waiting: another command is downloading toybirds in {folder}" in said.read_text()
    assert f"toybirds is already in {folder}: nothing to download." in said.read_text()
    for name, content in files.items():
        assert (folder / name).read_bytes() == content, name
    assert sorted(p.name for p in folder.iterdir()) == ["BIRDS", "birds.tgz"]  # no .part, no .extracting-*
    assert len(server.requests) == 1


def closed_port():
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_network_or_an_unreachable_server_fails_at_once_in_one_line(monkeypatch, tmp_path, capsys):
    archive = make_tgz(BIRD_FILES)
    checksum = "md5:" + hashlib.md5(archive).hexdigest()
    folder = tmp_path / "toybirds"
    for url, said in (("http://nonexistent.invalid/birds.tgz", "no network connection"),
                      (f"http://127.0.0.1:{closed_port()}/birds.tgz", "cannot be reached")):
        monkeypatch.setitem(downloads.DATASETS, "toybirds", downloads.Dataset(
            "toybirds", "http", url, ("BIRDS/images.txt", "BIRDS/images"), checksum))
        assert cli.run(data.main, ["download", "toybirds", "--data-dir", str(tmp_path)],
                       expected=data.EXPECTED) == 2
        printed = capsys.readouterr()
        out, message = printed.out, printed.err
        assert message.startswith("error: ") and said in message and message.count("\n") == 1, message
        assert "check the internet connection" in message and f"copy it to {folder / 'birds.tgz'}" in message
        assert "interrupted" not in out and "resuming" not in out
        assert sorted(p.name for p in folder.iterdir()) == []  # no empty .part left behind
    (folder / "birds.tgz.part").write_bytes(archive[:1000])  # an earlier run was cut: the next one resumes
    with pytest.raises(downloads.DownloadError, match="cannot be reached") as raised:
        downloads.download("toybirds", data_dir=tmp_path)
    assert f"the partial file {folder / 'birds.tgz.part'} is kept" in str(raised.value)
    assert (folder / "birds.tgz.part").read_bytes() == archive[:1000]
    (folder / "birds.tgz.part").unlink()
    (folder / "birds.tgz").write_bytes(archive)  # what the message offers: the file copied by hand
    downloads.download("toybirds", data_dir=tmp_path)
    assert (folder / "BIRDS" / "images.txt").read_bytes() == BIRD_FILES["BIRDS/images.txt"]


def test_a_killed_extraction_and_an_old_bad_file_are_cleaned_up_by_the_next_success(server, monkeypatch,
                                                                                    tmp_path):
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    folder = tmp_path / "toybirds"
    (folder / ".extracting-abc123" / "BIRDS").mkdir(parents=True)  # left by a killed run
    (folder / "birds.tgz.bad").write_bytes(b"an earlier download that failed its checksum")
    (folder / "notes.txt").write_text("mine")
    downloads.download("toybirds", data_dir=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["BIRDS", "attributes.txt", "birds.tgz", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_full_disk_while_extracting_is_not_blamed_on_the_archive(server, monkeypatch, tmp_path):
    birds = make_tgz(BIRD_FILES)  # made once: gzip's header holds the time, so a second one can differ
    register(monkeypatch, server, birds)

    def disk_full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", disk_full)
    with pytest.raises(downloads.DownloadError, match=r"No space left on device.* is kept") as raised:
        downloads.download("toybirds", data_dir=tmp_path)
    assert "damaged" not in str(raised.value) and "is kept" in str(raised.value)
    assert sorted(p.name for p in (tmp_path / "toybirds").iterdir()) == ["birds.tgz"]
    monkeypatch.undo()
    register(monkeypatch, server, birds)
    server.requests.clear()
    downloads.download("toybirds", data_dir=tmp_path)  # space freed: extracts, no second download
    assert server.requests == []
    assert (tmp_path / "toybirds" / "BIRDS" / "images.txt").is_file()


def test_unknown_dataset_is_refused_with_the_list():
    with pytest.raises(ValueError, match="dogscats, mnist, cifar10, cub200"):
        downloads.download("imagenet")


def test_registry_entries_are_complete():
    for name, dataset in downloads.DATASETS.items():
        assert dataset.name == name and dataset.files and dataset.terms.startswith("https://")
        if dataset.source == "http":
            assert dataset.checksum.split(":")[0] in ("md5", "sha256")
    assert downloads.DATASETS["cub200"].checksum == "md5:97eceeb196236b17998738112f37df78"


def test_mnist_lands_where_lesson_2_reads_it(server, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
              "y_train": np.arange(6, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
              "y_test": np.arange(2, dtype=np.uint8)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    server.files["/mnist.npz"] = payload
    mnist = downloads.DATASETS["mnist"]
    monkeypatch.setitem(downloads.DATASETS, "mnist", downloads.Dataset(
        "mnist", "http", f"{server.base}/mnist.npz", mnist.files,
        "sha256:" + hashlib.sha256(payload).hexdigest()))
    assert digits.load(tmp_path / "mnist").name == "sklearn_digits"  # not downloaded yet
    downloads.download("mnist", data_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["mnist.npz"]
    loaded = digits.load(tmp_path / "mnist")
    assert loaded.name == "mnist"
    np.testing.assert_array_equal(loaded.x_train, arrays["x_train"])
    np.testing.assert_array_equal(loaded.y_test, arrays["y_test"])


@pytest.fixture(autouse=True)
def no_host_kaggle_credentials(tmp_path, monkeypatch):
    """The host's Kaggle token (a kaggle.json in HOME, KAGGLE_* variables) never reaches a test: an empty config."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "no-kaggle-config").mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))


class FakeKaggleApi:
    """Stands in for `kaggle.api.kaggle_api_extended.KaggleApi` at its boundary."""

    def __init__(self, tmp_path, credentials=True, refuse=False, offline=False):
        self.config = os.path.join(os.environ["KAGGLE_CONFIG_DIR"], "kaggle.json")  # where the package reads it
        self.credentials, self.refuse, self.offline, self.calls = credentials, refuse, offline, []

    def authenticate(self):
        if not self.credentials:
            print("Authentication required to call the Kaggle API. ... (the package's banner)")
            exit(1)  # what the real package does when it finds no credentials

    def competition_download_files(self, competition, path=None, force=False, quiet=True):
        self.calls.append((competition, path))
        if self.offline:
            raise requests.ConnectionError("HTTPSConnectionPool(host='www.kaggle.com', port=443): Max retries")
        if self.refuse:
            response = requests.Response()
            response.status_code = 403
            raise requests.HTTPError("403 Client Error: Forbidden", response=response)
        train = make_zip({f"train/{kind}.{i}.jpg": b"jpeg" for kind in ("cat", "dog")
                          for i in range(3)})
        test = make_zip({f"test/{i}.jpg": b"jpeg" for i in range(1, 4)})
        outer = make_zip({"train.zip": train, "test.zip": test, "sample_submission.csv": b"id"})
        with open(os.path.join(path, f"{competition}.zip"), "wb") as file:
            file.write(outer)


def petimages_zip():
    """A small archive in the layout of Microsoft's kagglecatsanddogs_5340.zip."""
    rng = np.random.default_rng(0)
    files = {}
    for class_name in ("Cat", "Dog"):
        for i in range(6):
            buffer = io.BytesIO()
            PIL.Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(buffer, "JPEG")
            files[f"PetImages/{class_name}/{i}.jpg"] = buffer.getvalue()
    files["PetImages/Cat/666.jpg"] = b""  # the real archive has empty and broken files
    files["PetImages/Dog/Thumbs.db"] = b"\xd0\xcf\x11\xe0"
    files["CDLA-Permissive-2.0.pdf"] = b"%PDF-1.4"
    files["readme[1].txt"] = b"Microsoft Cats and Dogs"
    files["PetImages/Dog/filler.bin"] = rng.bytes(150_000)  # big enough to cut midway
    return make_zip(files)


def test_dogscats_needs_no_account_it_comes_from_microsoft(server, monkeypatch, tmp_path, capsys):
    archive = petimages_zip()
    server.files["/kagglecatsanddogs_5340.zip"] = archive
    server.cuts_left = 1  # and the connection drops once: the download resumes
    registered = downloads.DATASETS["dogscats"]
    assert registered.url.endswith("/kagglecatsanddogs_5340.zip") and registered.checksum == (
        "sha256:b7974bd00a84a99921f36ee4403f089853777b5ae8d151c76a86e64900334af9")
    monkeypatch.setitem(downloads.DATASETS, "dogscats", dataclasses.replace(
        registered, url=f"{server.base}/kagglecatsanddogs_5340.zip",
        checksum="sha256:" + hashlib.sha256(archive).hexdigest()))
    monkeypatch.setattr(downloads, "kaggle_api", lambda: pytest.fail("the default must not use Kaggle"))
    data.main(["download", "dogscats", "--data-dir", str(tmp_path)])
    folder = tmp_path / "dogscats"
    assert sorted(p.name for p in (folder / "PetImages").iterdir()) == ["Cat", "Dog"]
    assert any(header for _, header in server.requests)  # resumed with a Range request
    layout = data.organize(folder, tmp_path / "layouts", sample_train=2, sample_valid=1, sample_test=1)
    assert layout.kind == "petimages" and layout.dataset == "dogscats"
    assert layout.skipped == {"Cat/666.jpg": "empty file (0 bytes)"}
    assert sum(layout.counts["train"].values()) + sum(layout.counts["valid"].values()) + sum(
        layout.counts["test"].values()) == 12


def test_an_unknown_source_is_refused_with_the_list(tmp_path):
    with pytest.raises(ValueError, match="dogscats has no source 'flickr': choose one of microsoft, kaggle"):
        downloads.download("dogscats", data_dir=tmp_path, source="flickr")


def test_kaggle_success_unzips_the_flat_train_and_test_folders(monkeypatch, tmp_path):
    fake = FakeKaggleApi(tmp_path)
    monkeypatch.setattr(downloads, "kaggle_api", lambda: fake)
    folder = downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert fake.calls == [("dogs-vs-cats-redux-kernels-edition", str(folder))]
    assert sorted(p.name for p in (folder / "train").iterdir()) == [
        f"{kind}.{i}.jpg" for kind in ("cat", "dog") for i in range(3)]
    assert sorted(p.name for p in (folder / "test").iterdir()) == ["1.jpg", "2.jpg", "3.jpg"]
    assert not list(folder.glob(".extracting-*"))
    downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert len(fake.calls) == 1


def test_inner_zips_without_a_top_folder_still_unpack_each_into_its_own(tmp_path):
    # Kaggle's zips hold train/ and test/ today; one packed without them must not mix training and test photos
    inner = {"train.zip": make_zip({"cat.0.jpg": b"train", "1.jpg": b"train"}),
             "test.zip": make_zip({"1.jpg": b"test"})}
    archive = tmp_path / "competition.zip"
    archive.write_bytes(make_zip(inner))
    (tmp_path / "out").mkdir()
    downloads.extract(archive, tmp_path / "out", inner_zips=True)
    assert sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*.jpg")) == [
        "test/1.jpg", "train/1.jpg", "train/cat.0.jpg"]
    assert (tmp_path / "out" / "test" / "1.jpg").read_bytes() == b"test"


def test_kaggle_without_credentials_says_where_kaggle_json_goes(monkeypatch, tmp_path):
    fake = FakeKaggleApi(tmp_path, credentials=False)
    monkeypatch.setattr(downloads, "kaggle_api", lambda: fake)
    with pytest.raises(downloads.DownloadError) as raised:
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    message = str(raised.value)
    assert '"Generate New Token"' in message and "~/.kaggle/access_token" in message and "KAGGLE_API_TOKEN" in message
    assert f"at {fake.config} (`chmod 600 {fake.config}`)" in message  # an older kaggle.json, where it would be read
    assert "KAGGLE_USERNAME" in message and "KAGGLE_KEY" in message
    assert fake.calls == []


def test_kaggle_extraction_is_all_or_nothing_and_a_rerun_unpacks_without_downloading(monkeypatch, tmp_path):
    fake = FakeKaggleApi(tmp_path)
    monkeypatch.setattr(downloads, "kaggle_api", lambda: fake)
    real_extractall = zipfile.ZipFile.extractall

    def full_on_test_zip(self, path=None, *args, **kwargs):
        if str(self.filename).endswith("test.zip"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_extractall(self, path, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "extractall", full_on_test_zip)
    with pytest.raises(downloads.DownloadError, match=r"No space left on device.* is kept") as raised:
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    folder = tmp_path / "dogscats"
    archive = "dogs-vs-cats-redux-kernels-edition.zip"
    assert f"{archive} is kept" in str(raised.value)
    assert sorted(p.name for p in folder.iterdir()) == [archive]  # no train/ without test/
    monkeypatch.setattr(zipfile.ZipFile, "extractall", real_extractall)
    downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert sorted(p.name for p in folder.iterdir()) == [archive, "test", "train"]
    assert len(fake.calls) == 1  # unpacked from the archive already there


def test_kaggle_says_it_once_without_the_packages_banner(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(downloads, "kaggle_api", lambda: FakeKaggleApi(tmp_path, credentials=False))
    with pytest.raises(downloads.DownloadError, match="credentials not found"):
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert "banner" not in capsys.readouterr().out


def test_kaggle_without_a_network_is_one_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(downloads, "kaggle_api", lambda: FakeKaggleApi(tmp_path, offline=True))
    with pytest.raises(downloads.DownloadError, match="could not reach Kaggle .* internet connection"):
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")


@pytest.mark.parametrize("failure", [requests.ConnectionError, requests.exceptions.ProxyError,
                                     requests.exceptions.SSLError, requests.exceptions.ReadTimeout])
def test_kaggle_checking_a_token_offline_says_no_network_not_no_credentials(monkeypatch, tmp_path, failure):
    fake = FakeKaggleApi(tmp_path)

    def checks_the_token_with_kaggle():  # the kaggle package asks Kaggle whether a token is valid
        raise failure("HTTPSConnectionPool(host='api.kaggle.com', port=443): Max retries")

    fake.authenticate = checks_the_token_with_kaggle
    monkeypatch.setattr(downloads, "kaggle_api", lambda: fake)
    with pytest.raises(downloads.DownloadError, match=rf"could not reach Kaggle \({failure.__name__}\): check the"):
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert fake.calls == []


def test_a_malformed_kaggle_json_is_called_malformed_not_missing(monkeypatch, tmp_path):
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "kaggle.json").write_text('{"username": "learner"')
    fake = FakeKaggleApi(tmp_path, credentials=False)
    monkeypatch.setattr(downloads, "kaggle_api", lambda: fake)
    with pytest.raises(downloads.DownloadError, match="is not a valid Kaggle token") as raised:
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert "not found" not in str(raised.value) and fake.calls == []
    fake.credentials = True  # a token elsewhere (~/.kaggle/access_token): the package passes over the broken file
    assert (downloads.download("dogscats", data_dir=tmp_path, source="kaggle") / "train").is_dir()


def test_kaggle_403_sends_the_learner_to_the_rules_page(monkeypatch, tmp_path):
    monkeypatch.setattr(downloads, "kaggle_api", lambda: FakeKaggleApi(tmp_path, refuse=True))
    with pytest.raises(downloads.DownloadError, match=(
            "accept the competition rules at "
            "https://www.kaggle.com/c/dogs-vs-cats-redux-kernels-edition/rules")):
        downloads.download("dogscats", data_dir=tmp_path, source="kaggle")
    assert not (tmp_path / "dogscats" / "train").exists()


def test_download_command(server, monkeypatch, tmp_path, capsys):
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    data.main(["download", "toybirds", "--data-dir", str(tmp_path)])
    assert f"toybirds is ready in {tmp_path / 'toybirds'}" in capsys.readouterr().out
    monkeypatch.setattr(downloads, "kaggle_api", lambda: FakeKaggleApi(tmp_path, refuse=True))
    capsys.readouterr()
    assert cli.run(data.main, ["download", "dogscats", "--source", "kaggle", "--data-dir", str(tmp_path)],
                   expected=data.EXPECTED) == 2
    assert capsys.readouterr().err.startswith("error: Kaggle refused the download")


def test_a_hand_copied_single_file_dataset_is_checked_and_never_replaced(server, monkeypatch, tmp_path, capsys):
    # MNIST's download is the dataset itself (mnist.npz): a wrong file there is refused, left as it was
    good = np.random.default_rng(1).bytes(50_000)
    server.files["/digits.npz"] = good
    monkeypatch.setitem(downloads.DATASETS, "toydigits", downloads.Dataset(
        "toydigits", "http", f"{server.base}/digits.npz", ("digits.npz",), "sha256:" + hashlib.sha256(good).hexdigest()))
    folder = tmp_path / "toydigits"
    folder.mkdir()
    (folder / "digits.npz").write_bytes(b"junk")
    with pytest.raises(downloads.DownloadError, match="is not the file toydigits publishes"):
        downloads.download("toydigits", data_dir=tmp_path)
    assert (folder / "digits.npz").read_bytes() == b"junk" and server.requests == []
    (folder / "digits.npz").unlink()  # as the message says: moved away, then the same command downloads it
    downloads.download("toydigits", data_dir=tmp_path)
    assert (folder / "digits.npz").read_bytes() == good
    capsys.readouterr()
    downloads.download("toydigits", data_dir=tmp_path)  # the right file: checked, nothing downloaded
    assert "nothing to download" in capsys.readouterr().out and len(server.requests) == 1


def test_a_wrong_archive_put_where_the_download_goes_is_refused_and_kept(server, monkeypatch, tmp_path):
    # the kit leaves a download there only once its checksum matches: another file there came by hand
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    folder = tmp_path / "toybirds"
    folder.mkdir()
    other = make_tgz({"BIRDS/images.txt": b"not the published file\n", "BIRDS/images/x.jpg": b"x"})
    (folder / "birds.tgz").write_bytes(other)
    with pytest.raises(downloads.DownloadError, match="is not the file toybirds publishes"):
        downloads.download("toybirds", data_dir=tmp_path)
    assert server.requests == [] and sorted(p.name for p in folder.iterdir()) == ["birds.tgz"]
    assert (folder / "birds.tgz").read_bytes() == other


@pytest.mark.parametrize("mine", [["BIRDS/mine.txt"], []], ids=["a-file-of-mine", "an-empty-folder"])
def test_extraction_never_replaces_a_folder_already_there(server, monkeypatch, tmp_path, mine):
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    folder = tmp_path / "toybirds"
    (folder / "BIRDS").mkdir(parents=True)
    for name in mine:
        (folder / name).write_text("mine")
    with pytest.raises(downloads.DownloadError, match="already holds BIRDS, which birds.tgz would replace"):
        downloads.download("toybirds", data_dir=tmp_path)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["BIRDS", *mine, "birds.tgz"]
    assert all((folder / name).read_text() == "mine" for name in mine)


CERTIFICATES_SEEN = """
import os, ssl, sys
sys.platform = {platform!r}
found = ssl.get_default_verify_paths()
ssl.get_default_verify_paths = lambda: found._replace(openssl_cafile={cafile!r})
import utils
print(os.environ.get("SSL_CERT_FILE", "unset"))
print(ssl.create_default_context().cert_store_stats()["x509_ca"])
"""


def certificates_seen(platform, cafile, **environment):
    """What `import utils` leaves in SSL_CERT_FILE, and how many authorities a new TLS context then trusts."""
    env = {name: value for name, value in os.environ.items() if name not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    result = subprocess.run([sys.executable, "-c", CERTIFICATES_SEEN.format(platform=platform, cafile=cafile)],
                            capture_output=True, text=True, timeout=120, check=True,
                            env={**env, "PYTHONPATH": str(paths.ROOT), **environment})
    cert_file, authorities = result.stdout.split()
    return cert_file, int(authorities)


def test_a_mac_python_without_certificate_authorities_uses_certifis(tmp_path):
    """python.org's Python for macOS has no CA file until "Install Certificates.command" is run: every HTTPS
    download would fail. The kit then trusts certifi's authorities, as pip and requests do."""
    import certifi
    bundle = certifi.where()
    in_bundle = open(bundle).read().count("-----BEGIN CERTIFICATE-----")
    assert certificates_seen("darwin", str(tmp_path / "no-cert.pem")) == (bundle, in_bundle) and in_bundle > 100
    learners = tmp_path / "company.pem"  # a learner's own bundle (a network that inspects HTTPS) is kept
    learners.write_text(open(bundle).read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")
    assert certificates_seen("darwin", str(tmp_path / "no-cert.pem"), SSL_CERT_FILE=str(learners)) == (
        str(learners), 1)
    assert certificates_seen("darwin", bundle)[0] == "unset"  # its certificates were installed: nothing to do
    assert certificates_seen("linux", str(tmp_path / "no-cert.pem"))[0] == "unset"  # not a Mac: nothing to do


def test_a_python_without_tar_filters_still_extracts_a_checked_archive(server, monkeypatch, tmp_path):
    """Python added `extractall(filter=...)` in 3.11.4; a distribution's older 3.11 (Debian 12 ships 3.11.2)
    raised TypeError there, and lesson 5's CIFAR-10 and CUB never unpacked. The archive has passed its checksum."""
    extractall = tarfile.TarFile.extractall

    def without_filters(self, path=".", members=None, *, numeric_owner=False, **unknown):
        if unknown:
            raise TypeError(f"extractall() got an unexpected keyword argument {next(iter(unknown))!r}")
        return extractall(self, path, members, numeric_owner=numeric_owner, filter="fully_trusted")

    monkeypatch.delattr(tarfile, "data_filter")
    monkeypatch.setattr(tarfile.TarFile, "extractall", without_filters)
    register(monkeypatch, server, make_tgz(BIRD_FILES))
    folder = downloads.download("toybirds", data_dir=tmp_path)
    for name, content in BIRD_FILES.items():
        assert (folder / name).read_bytes() == content
