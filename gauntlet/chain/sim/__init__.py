"""The simulated chain: a small HTTP service with the chain's rules, and its ``Chain`` client.

``state`` holds the rules over SQLite, ``server`` serves them, ``client`` is the
:class:`~gauntlet.chain.base.Chain` implementation, ``process`` starts the service as a
child process. Not a security boundary beyond signed writes: it runs on loopback.
"""
