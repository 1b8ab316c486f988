"""Twisted edges of the ACS: the CWMP HTTP resource and its helpers."""
