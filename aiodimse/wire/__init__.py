"""Layer 1: PS3.8 PDUs and items, their codec and the incremental receive buffer."""
