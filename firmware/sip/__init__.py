"""SIP signalling (pyVoIP plus our patch layer) and the RTP media engine."""
