"""syncvid: raw talking-head videos in, face-aligned, audio-synchronised training clips out."""

__version__ = "0.1.0"
