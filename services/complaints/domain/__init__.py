"""Complaints domain: pure rules, no I/O, no protobuf."""
