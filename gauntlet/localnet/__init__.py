"""The local simulated subnet: chain service, stores and nodes as real processes on one machine."""
