"""Visual quality metrics and backends for stage 7 (see docs/quality.md).

`classic` (sharpness, exposure, contrast, noise, blockiness) and `brisque`
need nothing downloaded; `hyperiqa` (the reference's model) needs torch and a
user-supplied checkpoint and is imported only when asked for
(`syncvid.quality.backends.create_backend`).
"""
