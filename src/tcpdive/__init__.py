"""tcpdive: the Linux TCP/IP stack rebuilt in Python, on a virtual clock or a TUN device."""

__version__ = "0.1.0"
