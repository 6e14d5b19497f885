"""Contract suites: every view and every searchable index passes the same tests.

A new implementation subclasses the contract class and provides its fixtures; see
tests/test_view_contract.py and tests/test_searchable_contract.py.
"""
