"""`make bench`: speed and quality figures on this machine, printed and written to bench/results.json.

Not tests: nothing here asserts; each benchmark measures and reports, and the README
keeps the latest table.
"""
