"""Which clips a dataset reads: file lists and pipeline output folders."""

from __future__ import annotations

import pytest

from syncvid.data.fileslist import discover_clips, read_fileslist, resolve_clip_paths


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_read_fileslist_skips_blanks_comments_and_duplicates(tmp_path):
    lst = tmp_path / "lists" / "train.txt"
    lst.parent.mkdir()
    lst.write_text("/data/a.mp4\n\n# a comment\n  /data/b.mp4  \n/data/a.mp4\nrel/c.mp4\n")
    assert read_fileslist(lst) == ["/data/a.mp4", "/data/b.mp4", str(tmp_path / "lists" / "rel" / "c.mp4")]


def test_read_fileslist_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="file list not found"):
        read_fileslist(tmp_path / "nope.txt")


def test_discover_prefers_the_pipeline_fileslist(tmp_path):
    _touch(tmp_path / "high_visual_quality" / "x.mp4")
    (tmp_path / "fileslist.txt").write_text("/elsewhere/y.mp4\n")
    assert discover_clips(tmp_path) == ["/elsewhere/y.mp4"]


def test_discover_final_clips_folder_then_everything(tmp_path):
    final = [_touch(tmp_path / "high_visual_quality" / "s1" / "b.mp4"), _touch(tmp_path / "high_visual_quality" / "a.mp4")]
    _touch(tmp_path / "affine_transformed" / "a.mp4")
    _touch(tmp_path / "high_visual_quality" / ".a.mp4.1234.part")
    _touch(tmp_path / "high_visual_quality" / ".hidden" / "z.mp4")
    assert discover_clips(tmp_path) == [str(final[1]), str(final[0])]
    other = tmp_path / "plain"
    clips = [_touch(other / "1.mp4"), _touch(other / "sub" / "2.MP4")]
    _touch(other / "notes.txt")
    assert discover_clips(other) == [str(c) for c in clips]


@pytest.mark.parametrize(
    "fileslist, data_dir, message",
    [("", "", "set data.train_fileslist or data.train_data_dir"), (None, None, "set data.train_fileslist")],
)
def test_resolve_requires_a_source(fileslist, data_dir, message):
    with pytest.raises(ValueError, match=message):
        resolve_clip_paths(fileslist, data_dir)


def test_resolve_prefers_the_list(tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("/a.mp4\n")
    _touch(tmp_path / "d" / "b.mp4")
    assert resolve_clip_paths(lst, tmp_path / "d") == ["/a.mp4"]
    assert resolve_clip_paths("", tmp_path / "d") == [str(tmp_path / "d" / "b.mp4")]
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        resolve_clip_paths("", tmp_path / "missing")


def test_read_fileslist_splits_on_newlines_only(tmp_path):
    # a carriage return inside a line is part of the path; CRLF line ends are accepted
    lst = tmp_path / "list.txt"
    lst.write_bytes(b"/data/a\rb.mp4\n/data/c.mp4\r\n/data/d.mp4")
    assert read_fileslist(lst) == ["/data/a\rb.mp4", "/data/c.mp4", "/data/d.mp4"]
