"""streamfleet: GPU 3D-streaming session orchestrator.

This package holds what both planes share: the stream token codec, the TURN
credential codec, the lifecycles and the wire models, and the `streamfleet`
command line. The planes themselves live in `control_plane` and
`regional_stack`.
"""

__version__ = "0.1.0"
