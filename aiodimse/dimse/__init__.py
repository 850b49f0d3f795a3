"""Layer 3: PS3.7 DIMSE command sets, messages, fragmentation and reassembly."""
