"""Prompt lab: prompting techniques on a real instruct LLM (see tab.py for the UI, engine.py for decoding)."""
