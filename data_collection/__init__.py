"""Data collection: teleop sessions, human-video capture, and the episode recorder."""
