"""Protocol version: names object keys and is checked in every artifact.

Bump it when the wire format changes incompatibly; the code version is separate.
"""

PROTOCOL_VERSION = 1
