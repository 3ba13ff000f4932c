"""`streamfleet up`: the whole system on one machine, on loopback.

Real Redis, nginx + Lua routers, coturn, control plane, pool managers and
agents; moto stands in for AWS and the renderer stub for Unreal Engine.
"""
