import os
import stat

import pytest

from syncvid.errors import UsageError
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import DoneMarker
from syncvid.pipeline.discovery import assign_clip_stems, discover_inputs, discover_sources, find_inputs
from syncvid.records import MAX_CLIP_STEM_BYTES, Segment, Source, clip_stem_of


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


# ----------------------------------------------------------------------------- names, special files, output folders
def _rows(found):
    return {r["source"]: (r["row_type"], r["status"], r["stage"], r["reason"]) for r in found.skipped}


def test_same_stem_in_one_folder_gets_distinct_clip_names(tmp_path):
    for rel in ["talk.mp4", "talk.mov", "talk.MP4", "solo.mp4", "sub/talk.mp4", "Talk.mkv"]:
        _touch(tmp_path / rel)
    found = find_inputs(tmp_path, [".mp4", ".mov", ".mkv"])
    stems = {s.rel: s.output_stem for s in found.sources}
    assert stems == {"talk.mp4": "talk.mp4", "talk.mov": "talk.mov", "talk.MP4": "talk.MP4",
                     "solo.mp4": "solo", "sub/talk.mp4": "talk", "Talk.mkv": "Talk"}
    # names without a collision are exactly as before; the clip names of the folder are distinct
    clips = {Segment(s.rel, 0, 0, 0, 125, clip_stem=s.output_stem).clip_rel for s in found.sources}
    assert len(clips) == 6 and "solo_shot_000_000.mp4" in clips and "talk.mov_shot_000_000.mp4" in clips
    assert "sub/talk_shot_000_000.mp4" in clips


def test_whole_name_that_is_another_stem_is_renamed_too(tmp_path):
    # talk.mov's whole name equals the stem of talk.mov.mp4: that one takes its whole name as well
    sources = [Source(tmp_path / n, n) for n in ["talk.mp4", "talk.mov", "talk.mov.mp4"]]
    stems = [s.output_stem for s in assign_clip_stems(sources)]
    assert stems == ["talk.mp4", "talk.mov", "talk.mov.mp4"] and len(set(stems)) == 3


def test_clip_stem_is_recovered_from_the_clip_id():
    assert clip_stem_of("talk.mov_shot_000_002") == "talk.mov"
    assert clip_stem_of("a_shot_b_shot_012_1000") == "a_shot_b"
    assert clip_stem_of("") == ""


def test_long_names_are_shortened_deterministically(tmp_path):
    stem_a, stem_b = "é" * 123 + "a", "é" * 123 + "b"  # 247 bytes each, same first 200 bytes
    seg_a, seg_b = (Segment(f"d/{s}.mp4", 12, 3, 0, 125) for s in (stem_a, stem_b))
    for seg in (seg_a, seg_b):
        name = seg.clip_rel.split("/")[-1]
        assert len(name.encode()) <= 255 - 10 and name.endswith("_shot_012_003.mp4")
        assert len(clip_stem_of(seg.clip_id).encode()) <= MAX_CLIP_STEM_BYTES
    assert seg_a.clip_id != seg_b.clip_id
    assert seg_a.clip_id == Segment(f"d/{stem_a}.mp4", 12, 3, 0, 125).clip_id  # same name, same clip id
    short = Segment("d/short.mp4", 0, 0, 0, 125)
    assert short.clip_rel == "d/short_shot_000_000.mp4"


def test_bad_names_get_rows_and_do_not_stop_discovery(tmp_path):
    _touch(tmp_path / "good.mp4")
    _touch(tmp_path / "line\nbreak.mp4")
    _touch(tmp_path / "carriage\rreturn.mp4")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.mp4"), "wb") as fh:  # Latin-1 name: not UTF-8
        fh.write(b"x")
    found = find_inputs(tmp_path, [".mp4"])
    assert [s.rel for s in found.sources] == ["good.mp4"]
    assert _rows(found) == {"line\\nbreak.mp4": ("source", "dropped", "broken", "bad_name"),
                            "carriage\\rreturn.mp4": ("source", "dropped", "broken", "bad_name"),
                            "caf\\xe9.mp4": ("source", "dropped", "broken", "bad_name")}
    for row in found.skipped:
        row["source"].encode("utf-8")  # printable in the manifest
        assert "\n" not in row["source"] and row["message"]


def test_special_files_get_rows_and_are_never_opened(tmp_path):
    _touch(tmp_path / "good.mp4")
    os.mkfifo(tmp_path / "pipe.mp4")  # opening it would block discovery
    os.symlink(tmp_path / "gone.mp4", tmp_path / "x.mp4")
    os.mkfifo(tmp_path / "not_a_video")  # not a candidate: no row
    expected = {"pipe.mp4": ("source", "dropped", "broken", "not_a_regular_file"),
                "x.mp4": ("source", "dropped", "broken", "dangling_link")}
    try:
        os.mknod(tmp_path / "dev.mp4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        expected["dev.mp4"] = ("source", "dropped", "broken", "not_a_regular_file")
    except (OSError, AttributeError):
        pass  # creating a device node needs privileges
    _touch(tmp_path / ".hidden" / "v.mp4")
    os.mkfifo(tmp_path / ".hidden.mp4")  # hidden: ignored without a row, as documented
    found = find_inputs(tmp_path, [".mp4"])
    assert [s.rel for s in found.sources] == ["good.mp4"]
    assert _rows(found) == expected


def test_unreadable_folder_gets_a_row(tmp_path, monkeypatch):
    _touch(tmp_path / "good.mp4")
    locked = tmp_path / "locked"
    _touch(locked / "v.mp4")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # running as root: make the listing fail as it would for a user
            real_scandir = os.scandir

            def scandir(path="."):
                if os.fspath(path) == os.fspath(locked):
                    raise PermissionError(13, "Permission denied", os.fspath(path))
                return real_scandir(path)

            monkeypatch.setattr(os, "scandir", scandir)
        found = find_inputs(tmp_path, [".mp4"])
    finally:
        locked.chmod(0o755)
    assert [s.rel for s in found.sources] == ["good.mp4"]
    assert _rows(found) == {"locked/": ("source", "dropped", "broken", "unreadable_folder")}


def test_output_root_equal_to_input_excludes_only_its_own_folders(tmp_path):
    _touch(tmp_path / "v.mp4")
    _touch(tmp_path / "high_visual_quality" / "v_shot_000_000.mp4")  # an earlier run's outputs
    _touch(tmp_path / "affine_transformed" / "v_shot_000_000.mp4")
    _touch(tmp_path / ".syncvid" / "pool" / "v_shot_000_001.mp4")
    _touch(tmp_path / "talks" / "high_visual_quality" / "w.mp4")  # a user folder with that name, elsewhere
    found = discover_inputs(tmp_path, [".mp4"], OutputLayout(tmp_path.resolve()))
    assert [s.rel for s in found.sources] == ["talks/high_visual_quality/w.mp4", "v.mp4"]
    notice = found.notice(tmp_path.resolve())
    assert "affine_transformed/" in notice and "high_visual_quality/" in notice and "\n" not in notice
    assert "talks/" not in notice and ".syncvid" not in notice


def test_output_root_inside_input_keeps_other_folders_of_it(tmp_path):
    _touch(tmp_path / "out" / "high_visual_quality" / "v_shot_000_000.mp4")
    _touch(tmp_path / "out" / "raw" / "u.mp4")
    found = discover_inputs(tmp_path, [".mp4"], OutputLayout(tmp_path.resolve() / "out"))
    assert [s.rel for s in found.sources] == ["out/raw/u.mp4"]
    assert found.notice(tmp_path.resolve()).startswith("not searched for sources: out/high_visual_quality/")


def test_input_folder_named_like_an_output_folder(tmp_path):
    inp = tmp_path / "high_visual_quality"
    _touch(inp / "v.mp4")
    # elsewhere than its parent, the output root leaves such an input alone
    found = discover_inputs(inp, [".mp4"], OutputLayout(tmp_path.resolve() / "out"))
    assert [s.rel for s in found.sources] == ["v.mp4"] and found.notice(inp.resolve()) == ""
    # with the parent as output root the outputs would be written into the input: refused in one line
    with pytest.raises(UsageError, match="inside the output root's high_visual_quality/ folder"):
        discover_inputs(inp, [".mp4"], OutputLayout(tmp_path.resolve()))


def test_input_folder_named_like_an_intermediate_folder(tmp_path):
    # shot/ is written only with keep_intermediate: without it such an input is searched as usual
    inp = tmp_path / "shot"
    _touch(inp / "v.mp4")
    assert [s.rel for s in discover_inputs(inp, [".mp4"], OutputLayout(tmp_path.resolve())).sources] == ["v.mp4"]
    with pytest.raises(UsageError, match="shot/ folder"):
        discover_inputs(inp, [".mp4"], OutputLayout(tmp_path.resolve()), keep_intermediate=True)


def test_output_folders_are_never_listed(tmp_path, monkeypatch):
    # an output folder the run cannot list (say, another user's) is neither listed nor given a row
    _touch(tmp_path / "v.mp4")
    _touch(tmp_path / "high_visual_quality" / "v_shot_000_000.mp4")
    real_scandir, listed = os.scandir, []

    def scandir(path="."):
        listed.append(os.path.basename(os.fspath(path)))
        if os.path.basename(os.fspath(path)) == "high_visual_quality":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = discover_inputs(tmp_path, [".mp4"], OutputLayout(tmp_path.resolve()))
    assert [s.rel for s in found.sources] == ["v.mp4"] and found.skipped == []
    assert "high_visual_quality" not in listed


def test_names_an_earlier_run_gave_are_not_given_again(tmp_path):
    # x.mp4.mkv was alone and made x.mp4_shot_*.mp4; x.mp4 and x.mov, added since, would take x.mp4 too
    names = ["x.mp4.mkv", "x.mp4", "x.mov"]
    sources = [Source(tmp_path / n, n) for n in names]
    assert [s.output_stem for s in assign_clip_stems(sources)] == ["x.mp4.mkv", "x.mp4", "x.mov"]
    stems = [s.output_stem for s in assign_clip_stems(sources, {"x.mp4.mkv": "x.mp4"})]
    assert stems[0] == "x.mp4" and stems[2] == "x.mov" and stems[1].startswith("x.mp4~") and len(stems[1]) == 14
    # from the completion markers of an output root, as a run finds them
    for n in names:
        _touch(tmp_path / "in" / n)
    layout = OutputLayout(tmp_path.resolve() / "out")
    DoneMarker("x.mp4.mkv", "f", [{"source": "x.mp4.mkv", "clip": "", "row_type": "source"},
                                  {"source": "x.mp4.mkv", "clip": "x.mp4_shot_000_000", "row_type": "clip"}]).write(layout)
    found = discover_inputs(tmp_path / "in", [".mp4", ".mov", ".mkv"], layout)
    assert {s.rel: s.output_stem for s in found.sources} == dict(zip(names, stems))
