"""Lip-sync inference: dub a video with a trained UNet (`syncvid lipsync`), and the pure pieces
it is made of (ping-pong frame order, pasting a face back into its frame)."""
