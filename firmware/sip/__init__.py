"""SIP signalling (a small user agent of our own, docs/sip.md) and the RTP media engine."""
