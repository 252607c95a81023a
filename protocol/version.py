"""Protocol version: names object keys and is checked in every artifact.

Bump it when the wire format changes incompatibly; the code version is separate.
"""

# 2: contributions are sealed (protocol.sealed) and revealed after the observation closes.
PROTOCOL_VERSION = 2
