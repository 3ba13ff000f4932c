"""Warm-pool manager: pure sizing policies and damping, and the adapters that apply them.

`policies` and `damping` are pure (no boto3, no HTTP) so the launch-day simulator
drives the very functions the pool manager runs in production.
"""
