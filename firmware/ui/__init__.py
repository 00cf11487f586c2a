"""The screen: a pure function from a state snapshot to a 128x64 image and text lines."""
