"""Face detection, tracking, 68-point landmarks and 3-point alignment (pipeline stage 5).

Backends (`backends.create_backend`): ``dlib`` (default, no downloads) and
``insightface`` (optional, user-supplied buffalo_l models).  See docs/face.md.
"""
