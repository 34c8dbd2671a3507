"""Hearth's Qt interface: it adapts the Qt-free core (catalogue, hub, engine, chats) to widgets."""
