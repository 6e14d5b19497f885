"""Lede's tests; they mirror the packages (tests/contracts holds the contract suites)."""
