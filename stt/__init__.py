"""SEPIA-compatible realtime speech-to-text server on Trio."""

__version__ = "0.1.0"

#: The SEPIA STT Server version whose wire contract this server speaks.
PROTOCOL_VERSION = "1.0.0"
