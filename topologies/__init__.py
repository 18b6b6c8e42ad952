"""Data package ``ocsnet.topologies``: this folder ships inside the wheel (see setup.py); the code reads it with importlib.resources."""
