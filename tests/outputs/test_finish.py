from syncvid.atomic import temp_name
from syncvid.outputs.finish import remove_stale_temporaries
from syncvid.outputs.layout import OutputLayout


def test_stale_temporaries_removed_other_hidden_files_kept(tmp_path):
    # the output root is also the input folder: the user's own hidden files there stay
    layout = OutputLayout(tmp_path)
    clip = layout.final_dir / ("l" * 240 + "_shot_000_000.mp4")
    clip.parent.mkdir(parents=True)
    ours = [clip.parent / temp_name(clip.name), tmp_path / temp_name("manifest.parquet"),
            layout.state_dir / "done" / ".a-0123456789ab.json.x_9kq2ab.part"]  # an older run's mkstemp name
    theirs = [tmp_path / ".notes.part", tmp_path / ".draft.tmp", tmp_path / ".talk.mp4",
              tmp_path / ".backup.part.mp4"]
    for path in ours + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert remove_stale_temporaries(layout) == len(ours)
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)
