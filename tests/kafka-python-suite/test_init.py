# Copied to test/__init__.py of the unpacked kafka-python sdist so `test` is a
# package and `from test.testutil import ...` resolves to it (not the stdlib's).
