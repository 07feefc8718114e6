"""The device a process trains on, and how many CPU threads it takes."""
