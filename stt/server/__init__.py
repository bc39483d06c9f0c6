"""The Trio server: Hypercorn, the ASGI layers and app, connections, and the shared service."""
