"""Find source videos under an input folder: recursive, case-insensitive extensions, loop-safe.

Every path with a wanted extension either becomes a `Source` or gets a manifest row saying why
not (stage ``broken``): ``bad_name`` (not valid UTF-8, or a line break in the name),
``dangling_link``, ``not_a_regular_file`` (a FIFO, device or socket: never opened),
``unreadable_file``; a folder that cannot be listed gets an ``unreadable_folder`` row.
Hidden files and folders are ignored without a row, as documented.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from syncvid.errors import UsageError
from syncvid.outputs.layout import OutputLayout
from syncvid.outputs.markers import read_marker
from syncvid.records import Source, clip_stem_of, fit_clip_stem

__all__ = ["Discovery", "assign_clip_stems", "check_input_outside_outputs", "discover_inputs",
           "discover_sources", "display_name", "find_inputs", "output_folders_inside",
           "recorded_clip_stems"]

SKIP_STAGE = "broken"


@dataclass
class Discovery:
    """What a search of the input folder found."""

    sources: list[Source] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # manifest rows of paths that did not become sources
    excluded: list[Path] = field(default_factory=list)  # output folders inside the input, not searched

    def notice(self, input_dir: Path) -> str:
        """One line naming the excluded output folders that exist ("" when none does)."""
        shown = [p for p in self.excluded if p.is_dir() and not p.name.startswith(".")]
        if not shown:
            return ""
        names = ", ".join(f"{p.relative_to(input_dir).as_posix()}/" for p in shown)
        return f"not searched for sources: {names} (the output root's own folders, inside the input folder)"


def display_name(rel: str) -> str:
    """`rel` as a printable UTF-8 string: undecodable bytes as \\xNN, line breaks as \\n and \\r."""
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _skip_row(rel: str, reason: str, message: str) -> dict:
    return {"source": display_name(rel), "clip": "", "row_type": "source", "status": "dropped",
            "stage": SKIP_STAGE, "reason": reason, "message": message, "output": "", "candidate": ""}


def _name_problem(rel: str) -> str:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8 (it cannot be written to the manifest or fileslist.txt)"
    if "\n" in rel or "\r" in rel:
        return "the path contains a line break (fileslist.txt has one path per line)"
    return ""


def _file_problem(path: Path) -> tuple[str, str]:
    """(reason, message) when `path` is not a readable regular file, else ("", "").  Never opens it."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if os.path.islink(path):
            return "dangling_link", f"symbolic link to {os.readlink(path)!r}, which cannot be reached ({exc.strerror})"
        return "unreadable_file", f"cannot read its status: {exc.strerror}"
    if stat.S_ISREG(st.st_mode):
        return "", ""
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a file")
    return "not_a_regular_file", f"{kind}, not a regular file: not opened"


def find_inputs(input_dir: Path, extensions: list[str], exclude: list[Path] = ()) -> Discovery:
    """Every file under `input_dir` whose extension is in `extensions`, sorted by relative path.

    Symbolic links to folders outside the input root are followed (each real folder is
    visited once, so link loops end); links to folders inside the root are skipped, as
    those folders are found at their real place; hidden files and folders (names starting with '.') are
    ignored; folders in `exclude` (such as an output root inside the input) are skipped.
    """
    root = Path(input_dir).resolve()
    wanted = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    excluded = {Path(p).resolve() for p in exclude}
    seen_dirs: set[str] = set()
    found: dict[str, Source] = {}
    skipped: dict[str, dict] = {}
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=errors.append):
        real = os.path.realpath(dirpath)
        if real in seen_dirs or Path(real) in excluded:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not _link_inside(Path(dirpath) / d, root)
                             and Path(os.path.realpath(Path(dirpath) / d)) not in excluded)  # never listed
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in wanted:
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            problem = _name_problem(rel)
            reason, message = ("bad_name", problem) if problem else _file_problem(path)
            if reason:
                skipped.setdefault(rel, _skip_row(rel, reason, message))
            else:
                found.setdefault(rel, Source(path=path, rel=rel))
    for err in errors:  # folders os.walk could not list
        folder = Path(err.filename)
        if folder == root:
            raise UsageError(f"cannot read the input folder {root}: {err.strerror}")
        rel = folder.relative_to(root).as_posix() + "/"
        skipped.setdefault(rel, _skip_row(rel, "unreadable_folder", f"cannot list the folder: {err.strerror}"))
    sources = assign_clip_stems([found[k] for k in sorted(found)])
    rows = [skipped[k] for k in sorted(skipped, key=display_name)]
    return Discovery(sources, rows, sorted(excluded))


def discover_sources(input_dir: Path, extensions: list[str], exclude: list[Path] = ()) -> list[Source]:
    """The sources `find_inputs` finds (without the rows of the paths it skipped)."""
    return find_inputs(input_dir, extensions, exclude).sources


def assign_clip_stems(sources: list[Source], recorded: dict[str, str] | None = None) -> list[Source]:
    """Give every source of a folder a distinct clip stem, deterministically from the folder's names.

    A source keeps its own stem unless another source in its folder has the same stem
    (`talk.mp4`, `talk.mov`, `talk.MP4`): then each of those is named after its whole file
    name (`talk.mov_shot_000_000.mp4`), repeated until no two names of the folder are equal.
    `recorded` maps a source's relative path to the clip stem its clips already have on disk (an
    earlier run's): no other source of the folder is given that name (past the whole file name,
    one gets `~` and 8 hex digits of its name's SHA-1 added).
    Stems longer than `records.MAX_CLIP_STEM_BYTES` are shortened (`records.fit_clip_stem`).
    """
    recorded = recorded or {}
    by_dir: dict[str, list[Source]] = defaultdict(list)
    for s in sources:
        by_dir[s.rel_dir].append(s)
    level: dict[str, int] = {}  # 1: the whole file name, 2: the whole file name and a hash of it
    for group in by_dir.values():
        held = Counter(recorded[s.rel] for s in group if s.rel in recorded)
        while True:
            names = {s.rel: _stem_at(s, level.get(s.rel, 0)) for s in group}
            counts = Counter(names.values())
            # a name an earlier run gave stays its holder's; whole file names differ from each other
            clash = set()
            for rel, n in names.items():
                own = recorded.get(rel) == n
                if level.get(rel, 0) < 2 and held[n] > own or not level.get(rel) and counts[n] > 1 and not own:
                    clash.add(rel)
            if not clash:
                break
            for rel in clash:
                level[rel] = level.get(rel, 0) + 1
    return [Source(s.path, s.rel, _stem_at(s, level[s.rel])) if level.get(s.rel) else s for s in sources]


def _stem_at(source: Source, level: int) -> str:
    if level == 0:
        return source.output_stem
    name = Path(source.rel).name
    if level == 1:
        return fit_clip_stem(name)
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return fit_clip_stem(f"{name}~{digest}")


def recorded_clip_stems(layout: OutputLayout, sources: list[Source]) -> dict[str, str]:
    """The clip stems the completion markers record for `sources` (in folders of two or more sources,
    the only ones where names can collide)."""
    per_dir = Counter(s.rel_dir for s in sources)
    recorded: dict[str, str] = {}
    for s in sources:
        if per_dir[s.rel_dir] < 2:
            continue
        marker = read_marker(layout, s.rel)
        stems = {clip_stem_of(r.get("clip") or "") for r in marker.rows} - {""} if marker else set()
        if len(stems) == 1:
            recorded[s.rel] = stems.pop()
    return recorded


def check_input_outside_outputs(input_dir: Path, layout: OutputLayout, keep_intermediate: bool = False) -> None:
    """Refuse an input folder that is (or lies in) a folder the run writes its outputs to.

    Those are high_visual_quality/, affine_transformed/ and .syncvid/ at the output root, and the
    intermediate folders when `keep_intermediate` is set (without it an input folder may be called
    `shot/` or `resampled/`).
    """
    input_dir = Path(input_dir).resolve()
    written = [layout.final_dir, layout.candidates_dir, layout.state_dir]
    if keep_intermediate:
        written += [p for p in layout.all_stage_dirs() if p not in written]
    for own in written:
        if input_dir.is_relative_to(own):
            raise UsageError(f"the input folder {input_dir} is inside the output root's {own.name}/ folder, "
                             f"where syncvid writes its outputs: choose another --output_dir than {layout.root}")


def output_folders_inside(input_dir: Path, layout: OutputLayout) -> list[Path]:
    """The output root's own folders (stage folders, .syncvid) that lie inside `input_dir`.

    Only these exact folders at the output root are excluded from the search: a folder
    elsewhere that happens to have the same name (say `talks/high_visual_quality/`) is searched.
    """
    input_dir = Path(input_dir).resolve()
    return [p for p in layout.all_stage_dirs() + [layout.state_dir] if p != input_dir and p.is_relative_to(input_dir)]


def discover_inputs(input_dir: Path, extensions: list[str], layout: OutputLayout,
                    keep_intermediate: bool = False) -> Discovery:
    """The sources of a run writing to `layout`, with the output root's own folders left out."""
    check_input_outside_outputs(input_dir, layout, keep_intermediate)
    found = find_inputs(input_dir, extensions, exclude=output_folders_inside(input_dir, layout))
    recorded = recorded_clip_stems(layout, found.sources)
    if recorded:  # names an earlier run gave stay theirs: a source added since never takes one
        found.sources = assign_clip_stems([Source(s.path, s.rel) for s in found.sources], recorded)
    return found


def _link_inside(path: Path, root: Path) -> bool:
    return path.is_symlink() and Path(os.path.realpath(path)).is_relative_to(root)
