"""The command layer: each command defined once, Discord-free, returning an Answer."""
