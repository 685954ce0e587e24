"""Blocking: who refuses to be added, pushed or seen online by whom."""
