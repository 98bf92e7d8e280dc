"""The daemon: one iteration is observe -> decide -> record intents -> act -> record results."""
