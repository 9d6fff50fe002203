"""The channel protocol as a pure state machine: no I/O, no clock, no randomness."""
