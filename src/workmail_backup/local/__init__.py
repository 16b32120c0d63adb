"""Local mode: moto, the WorkMail emulator, and the real state machine, on one machine."""
