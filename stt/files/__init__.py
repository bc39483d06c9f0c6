"""Whole recordings: decode a file, transcribe it with an engine, write text or subtitles."""
