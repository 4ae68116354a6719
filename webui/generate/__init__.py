"""The Generate tab, and the page's own generation."""
