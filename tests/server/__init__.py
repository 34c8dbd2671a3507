"""Tests of the OpenAI-compatible server and the remote engine."""
