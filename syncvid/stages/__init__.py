"""The seven stages, in the order a source meets them (`syncvid.pipeline.source_runner` drives them).

==  ========  =====================================================  ==========================================
#   stage     decides                                                rejection reasons (`syncvid.rows.Reason`)
==  ========  =====================================================  ==========================================
1   broken    can the source be opened and decoded, with video and   not_found, empty_file, truncated,
              audio? (`broken.open_source`; whole source); paths     decode_error, zero_frames, no_video,
              that never become sources (`pipeline.discovery`)       no_audio, empty_audio, no_common_span,
                                                                     internal_error, bad_name,
                                                                     not_a_regular_file, dangling_link,
                                                                     unreadable_file, unreadable_folder
2   resample  the 25 fps / 16 kHz timeline of the common audio-video  no_common_span, internal_error,
              span (the runner's single decode; whole source)        worker_crashed
3   scene     shot boundaries (`scene.SceneDetector`, on thumbnails)  none: it only cuts
4   segment   fixed-length pieces of each shot; a too-short tail is  too_short
              dropped (`segment.split_shot`, `segment.locate`)
5   face      one tracked, large enough, frontal face in every frame  no_face, multiple_faces, face_too_small,
              of the segment; aligns it (`face.FaceStage`)           face_lost, extreme_yaw
6   sync      audio-video offset and confidence; shifts the audio    low_sync_conf, offset_too_large, too_short
              by the offset (`sync.SyncStage`)
7   quality   visual quality of the aligned clip (`quality.           low_quality:dark, low_quality:bright,
              QualityStage`)                                         low_quality:blur, low_quality:mouth_blur,
                                                                     low_quality:contrast, low_quality:noise,
                                                                     low_quality:blockiness,
                                                                     low_quality:brisque, low_quality:hyperiqa
==  ========  =====================================================  ==========================================

Stages 1-2 reject a whole source (one `row_type = source` row); stages 4-7 reject one candidate
segment (its `row_type = clip` row).  A source whose segments were all dropped gets
``no_clips_kept`` on its source row.  A failed write of one of the run's own files is recorded as
``disk_full`` or ``write_error`` at the stage whose file it was.  Face, sync and quality follow one contract,
`syncvid.stages.base.Stage` (`name`, `resources`, `setup()`, `judge(...)`, `reasons`); sync and
quality judge only recorded measurements, after both have measured, so `syncvid filter` can re-decide
a finished run (`syncvid.pipeline.decisions.decide`).
"""
