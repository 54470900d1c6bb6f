"""Candidate searches: each finds earlier files a new photo may duplicate, and scores them."""
