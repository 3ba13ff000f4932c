"""The renderer stub (a Pixel Streaming streamer built on aiortc) and its pure parts."""
