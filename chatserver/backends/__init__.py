"""Implementations of the seams in `chatserver.ports`, one package per kind of shared state.

`memory/` is the embedded single-node default; `redis/` makes a node one of many. Each package has
one module per seam (store, bus, presence, ratelimit, denylist) and the same contract tests
(`tests/contracts/`) run against both. Only the composition root (`chatserver.app`, and the CLI's
deny-list commands) chooses and constructs a backend; everything else sees the ports, and asks for
an optional capability through a protocol in `chatserver.ports`, never by class.
"""
