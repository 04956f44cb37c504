"""Atomic writes: hidden temporaries beside the target, renamed only when complete, for any valid name."""

from __future__ import annotations

import os
import stat

import pytest

from syncvid.atomic import NAME_MAX, atomic_path, temp_name, write_json_atomic, write_text_atomic


def test_a_250_character_name_is_written(tmp_path):
    # the temporary of a 250-character name used to be longer than the 255-byte limit (Errno 36)
    target = tmp_path / ("n" * 246 + ".mp4")
    write_text_atomic(target, "done")
    assert target.read_text() == "done" and os.listdir(tmp_path) == [target.name]
    multibyte = tmp_path / ("é" * 125 + ".json")  # 254 bytes
    write_json_atomic(multibyte, {"a": 1})
    assert multibyte.is_file() and sorted(os.listdir(tmp_path)) == sorted([target.name, multibyte.name])


def test_temporary_names_are_hidden_short_enough_and_distinct():
    for name in ["clip.mp4", "x" * 255, "é" * 127, "caf\udce9.mp4"]:
        tmp = temp_name(name)
        assert tmp.startswith(".") and tmp.endswith(".part")
        assert len(tmp.encode("utf-8", "surrogateescape")) <= NAME_MAX
    assert temp_name("clip.mp4").startswith(".clip.mp4.")  # short names stay recognisable
    assert temp_name("clip.mp4") != temp_name("clip.mp4")


def test_failed_write_leaves_nothing_and_permissions_are_ordinary(tmp_path):
    target = tmp_path / ("f" * 250)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    write_text_atomic(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
