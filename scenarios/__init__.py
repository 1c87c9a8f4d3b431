"""The scenario files shipped with parbench (package data, found by name:
``parbench run chatty-single-sender``)."""
