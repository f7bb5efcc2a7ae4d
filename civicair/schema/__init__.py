"""The vocabulary every civicair part shares (standard library only)."""
