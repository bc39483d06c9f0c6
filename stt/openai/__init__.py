"""OpenAI's audio transcription API as a front door: its requests, responses and errors."""
