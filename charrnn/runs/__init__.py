"""A run on disk and its process."""
