"""Layer 2: the PS3.8 upper-layer state machine and association negotiation."""
