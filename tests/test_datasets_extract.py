"""Safe extraction of zip and tar archives, on real archive files."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from fakes.data import raw_zip

from mltrainer.state.errors import DatasetError
from mltrainer.tools.datasets.extract import extract, is_archive

BIG = 10**9


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def test_zip_with_folders_is_extracted(tmp_path: Path) -> None:
    archive = write(tmp_path / "a.zip", raw_zip([("data/train.csv", b"x\n1\n"), ("README", b"hi")]))
    assert is_archive(archive)
    names = extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=10)
    assert names == ["README", "data/train.csv"]
    assert (tmp_path / "out/data/train.csv").read_bytes() == b"x\n1\n"


@pytest.mark.parametrize(
    "name", ["../evil.csv", "/etc/evil.csv", "a/../../evil.csv", "C:/evil.csv"]
)
def test_zip_slip_and_absolute_members_are_refused(tmp_path: Path, name: str) -> None:
    archive = write(tmp_path / "a.zip", raw_zip([("ok.csv", b"1"), (name, b"2")]))
    with pytest.raises(DatasetError, match="points outside the target"):
        extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=10)
    assert not (tmp_path / "out" / "ok.csv").exists()
    assert not (tmp_path / "evil.csv").exists()


def test_zip_symlink_member_is_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = write(tmp_path / "a.zip", raw_zip([(link, b"/etc/passwd")]))
    with pytest.raises(DatasetError, match="symbolic link"):
        extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=10)


def test_zip_bomb_declared_size(tmp_path: Path) -> None:
    archive = write(tmp_path / "bomb.zip", raw_zip([("zeros", b"\0" * 2_000_000)]))
    with pytest.raises(DatasetError, match="zip bomb"):
        extract(archive, tmp_path / "out", max_bytes=1_000_000, max_entries=10)


def test_zip_that_lies_about_its_size_is_stopped_while_writing(tmp_path: Path) -> None:
    data = raw_zip([("zeros", b"\0" * 2_000_000)])
    # Patch the declared uncompressed size (central directory and local header) to 10 bytes.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.infolist()[0]
    real = (2_000_000).to_bytes(4, "little")
    forged = data.replace(real, (10).to_bytes(4, "little"))
    assert forged != data and info.file_size == 2_000_000
    archive = write(tmp_path / "liar.zip", forged)
    with pytest.raises(DatasetError):
        extract(archive, tmp_path / "out", max_bytes=1_000_000, max_entries=10)
    assert not (tmp_path / "out").exists()


def test_too_many_entries(tmp_path: Path) -> None:
    archive = write(tmp_path / "many.zip", raw_zip([(f"f{i}", b"") for i in range(20)]))
    with pytest.raises(DatasetError, match="20 entries, more than the limit of 5"):
        extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=5)


def test_tar_links_and_devices_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tar_with(tmp_path / "l.tar.gz", [(link, b"")])
    with pytest.raises(DatasetError, match="is a link"):
        extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=10)
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    archive = tar_with(tmp_path / "d.tar.gz", [(device, b"")])
    with pytest.raises(DatasetError, match="device"):
        extract(archive, tmp_path / "out2", max_bytes=BIG, max_entries=10)


def test_tar_slip_and_happy_path(tmp_path: Path) -> None:
    archive = tar_with(tmp_path / "s.tgz", [(tarfile.TarInfo("../x.csv"), b"1")])
    with pytest.raises(DatasetError, match="points outside"):
        extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=10)
    good = tar_with(tmp_path / "g.tar.gz", [(tarfile.TarInfo("t/train.csv"), b"a\n1\n")])
    assert extract(good, tmp_path / "ok", max_bytes=BIG, max_entries=10) == ["t/train.csv"]


def test_corrupt_archive_is_a_clear_error(tmp_path: Path) -> None:
    data = raw_zip([("a.csv", b"x" * 1000)])
    archive = write(tmp_path / "broken.zip", data[:30] + b"\0" * 200 + data[230:])
    with pytest.raises(DatasetError, match=r"corrupt or truncated|unsafe"):
        extract(archive, tmp_path / "out", max_bytes=BIG, max_entries=10)
