import os

from syncvid.pipeline.discovery import discover_sources


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_recursive_case_insensitive_sorted(tmp_path):
    for rel in ["b.MP4", "a.mov", "sub/c.mkv", "sub/deep/d.WebM", "notes.txt", ".hidden.mp4", ".cache/e.mp4",
                "odd names/it's a \"talk\" — ünï.mp4", "-dash.mp4"]:
        _touch(tmp_path / rel)
    found = [s.rel for s in discover_sources(tmp_path, [".mp4", ".mov", ".mkv", "webm"])]
    assert found == sorted(["-dash.mp4", "a.mov", "b.MP4", "odd names/it's a \"talk\" — ünï.mp4",
                            "sub/c.mkv", "sub/deep/d.WebM"])


def test_symlink_loop_does_not_hang(tmp_path):
    _touch(tmp_path / "x" / "v.mp4")
    os.symlink(tmp_path, tmp_path / "x" / "loop")
    os.symlink(tmp_path / "x", tmp_path / "again")
    found = [s.rel for s in discover_sources(tmp_path, [".mp4"])]
    assert found.count("x/v.mp4") == 1 and len(found) == 1


def test_excluded_output_inside_input(tmp_path):
    _touch(tmp_path / "v.mp4")
    _touch(tmp_path / "out" / "high_visual_quality" / "v_shot_000_000.mp4")
    assert [s.rel for s in discover_sources(tmp_path, [".mp4"], exclude=[tmp_path / "out"])] == ["v.mp4"]


def test_source_names(tmp_path):
    _touch(tmp_path / "a" / "b.c.mp4")
    (src,) = discover_sources(tmp_path, [".mp4"])
    assert (src.stem, src.rel_dir, src.path) == ("b.c", "a", tmp_path.resolve() / "a" / "b.c.mp4")
