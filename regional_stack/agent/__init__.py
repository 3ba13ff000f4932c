"""The instance agent: signalling server, session lifecycle, renderer supervisor."""
