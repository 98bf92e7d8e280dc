"""One class per screen or dialog; each follows the protocol of ``base.View``."""
