"""Pixel Streaming signalling, pure: the message codec (protocol 1.3.0) and the close codes."""
