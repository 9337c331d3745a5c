"""Bad input is refused with exit 2 and a message naming the file, line or value and the accepted forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign.errors import InputError
from campaign.spec.load import load_campaign
from campaign.store import open_store

from .conftest import run_cli

STAGES = "stages:\n  - {name: s, kind: data, run: 'true'}\n"


def alias_bomb(levels: int) -> str:
    """Each level refers to the previous one ten times: 10**levels values once expanded, a few lines on disk."""
    lines = ["name: t", "scale_factors: [1]", "vars:", "  l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + STAGES


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(alias_bomb(7))  # 10 million values
    with pytest.raises(InputError, match=r"expands to more than 200000 values once its YAML aliases"):
        load_campaign(path)


def test_a_recursive_alias_is_refused_with_its_line(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nscale_factors: [1]\nvars:\n  a: &a [1, *a]\n" + STAGES)
    with pytest.raises(InputError, match=rf"{path}:4: a YAML alias refers to a value that contains it"):
        load_campaign(path)


def test_ordinary_aliases_still_load(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nscale_factors: [1]\nvars:\n  a: &a [1, 2]\n  b: *a\n" + STAGES)
    assert load_campaign(path).vars["b"] == [1, 2]


def test_an_oversized_campaign_file_is_refused(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("name: t\nscale_factors: [1]\n" + STAGES + "#" * (1024 * 1024) + "\n")
    with pytest.raises(InputError, match="is larger than 1024 KiB"):
        load_campaign(path)


def test_plan_and_run_refuse_bad_campaign_files_with_exit_2(toy_repo: Path):
    (toy_repo / "bomb.yaml").write_text(alias_bomb(7))
    (toy_repo / "latin1.yaml").write_bytes(b"name: t\nscale_factors: [1]\n# caf\xe9\n" + STAGES.encode())
    for args, expected in [
        (("plan", "-f", "bomb.yaml"), "bomb.yaml: expands to more than"),
        (("run", "-f", "bomb.yaml"), "bomb.yaml: expands to more than"),
        (("plan", "-f", "latin1.yaml"), "latin1.yaml:3: not UTF-8 (byte 0xe9"),
        (("plan", "-f", "scripts"), "repo/scripts is a folder. -f takes the campaign file itself, e.g. -f "),
    ]:
        result = run_cli(toy_repo, *args)
        assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr
        assert expected in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("status", "../../etc"),
        ("status", ""),
        ("logs", "../x"),
        ("verify", "/etc"),
        ("resume", ".."),
        ("plan", "--resume", "../a"),
        ("down", "a/b"),
        ("agent", "../a", "--store", "s"),
        ("logs", "r/../../x", "gen"),
    ],
)
def test_a_run_id_that_is_not_one_folder_name_is_bad_input(toy_repo: Path, args: tuple[str, ...]):
    result = run_cli(toy_repo, *args)
    assert result.returncode == 2, result.stderr
    assert "is not a run id. A run id looks like 20261122T181500Z-1a2b3c4-k3f9" in result.stderr
    assert not (toy_repo / ".campaign/store").exists()


@pytest.mark.parametrize("store", ["S3://bucket/p", "s3:/bucket", "file:///tmp/store", "gs://bucket/p", "s3://B/p"])
def test_a_store_that_is_neither_a_folder_nor_s3_is_bad_input(toy_repo: Path, store: str):
    result = run_cli(toy_repo, "runs", "--store", store)
    assert result.returncode == 2, result.stderr
    assert "s3://BUCKET" in result.stderr and "Traceback" not in result.stderr
    assert not any(toy_repo.glob("*:*")) and not (toy_repo / "S3:").exists()


def test_folder_stores_and_s3_addresses_are_accepted(tmp_path: Path):
    assert open_store(tmp_path / "store").where("k") == f"{tmp_path}/store/k"
    assert open_store("s3://my-bucket.1/pre/fix").where("k") == "s3://my-bucket.1/pre/fix/k"
