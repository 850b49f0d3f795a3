"""Tests of layer 1: the PDU codec and the receive buffer."""
