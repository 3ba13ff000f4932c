"""Pixel Streaming signalling: message codec and an aiortc player client."""
