"""Prebuilt extraction is bounded: total uncompressed size and member count, checked before anything is written."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import campaign.prebuilt.artifact as prebuilt
from campaign.errors import InputError

OUTPUT = ("target/release",)


def tarball_of(path: Path, members: list[tuple[str, int]]) -> Path:
    """A gzipped tarball of regular files of zeros (a few KiB on disk however large they expand)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    return path


def forged_header(path: Path, claimed_size: int) -> Path:
    """A tiny gzipped tarball whose one header claims claimed_size bytes of data."""
    info = tarfile.TarInfo("target/release/huge")
    info.size = claimed_size
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        archive.fileobj.write(info.tobuf(tarfile.PAX_FORMAT))
    return path


def files_in(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_a_tarball_that_expands_past_the_size_limit_is_refused_before_writing(tmp_path: Path):
    tarball = tarball_of(tmp_path / "t.tar.gz", [("target/release/a", 600_000), ("target/release/b", 600_000)])
    checkout = tmp_path / "area" / "checkout"
    checkout.mkdir(parents=True)
    limits = prebuilt.ExtractionLimits(max_bytes=1_000_000, max_members=100)
    with pytest.raises(
        prebuilt.PrebuiltRejected,
        match=r"expands to more than 100 members or 1.0 MB \(at member "
        r"2, target/release/b: 1.2 MB so far\); nothing was extracted",
    ):
        prebuilt.extract(tarball, checkout, OUTPUT, limits)
    assert files_in(tmp_path / "area") == ["checkout"]


def test_a_tarball_with_too_many_members_is_refused_before_writing(tmp_path: Path):
    tarball = tarball_of(tmp_path / "t.tar.gz", [(f"target/release/f{i}", 1) for i in range(50)])
    checkout = tmp_path / "area" / "checkout"
    checkout.mkdir(parents=True)
    with pytest.raises(prebuilt.PrebuiltRejected, match="at member 11"):
        prebuilt.extract(tarball, checkout, OUTPUT, prebuilt.ExtractionLimits(max_members=10))
    assert files_in(tmp_path / "area") == ["checkout"]


def test_the_default_limit_refuses_a_header_claiming_more_than_20_gib(tmp_path: Path):
    tarball = forged_header(tmp_path / "t.tar.gz", 21 * prebuilt.GiB)
    assert tarball.stat().st_size < 10_000
    with pytest.raises(prebuilt.PrebuiltRejected, match=r"expands to more than 200000 members or 21.5 GB"):
        prebuilt.extract(tarball, tmp_path / "checkout", OUTPUT, prebuilt.ExtractionLimits())


def test_limits_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    tarball = tarball_of(tmp_path / "t.tar.gz", [("target/release/a", 2048)])
    monkeypatch.setenv(prebuilt.MAX_BYTES_VARIABLE, "1024")
    with pytest.raises(prebuilt.PrebuiltRejected, match=r"raise \$CAMPAIGN_PREBUILT_MAX_BYTES"):
        prebuilt.extract(tarball, tmp_path / "checkout", OUTPUT)
    monkeypatch.setenv(prebuilt.MAX_BYTES_VARIABLE, "4096")
    assert prebuilt.extract(tarball, tmp_path / "checkout", OUTPUT) == 1
    monkeypatch.setenv(prebuilt.MAX_MEMBERS_VARIABLE, "lots")
    with pytest.raises(InputError, match=r"\$CAMPAIGN_PREBUILT_MAX_MEMBERS='lots' must be a whole number"):
        prebuilt.ExtractionLimits.from_environment()


def test_a_build_within_the_defaults_extracts(tmp_path: Path):
    tarball = tarball_of(tmp_path / "t.tar.gz", [(f"target/release/deps/f{i}", 100) for i in range(300)])
    assert prebuilt.extract(tarball, tmp_path / "checkout", OUTPUT) == 300
    assert len(list((tmp_path / "checkout/target/release/deps").iterdir())) == 300
