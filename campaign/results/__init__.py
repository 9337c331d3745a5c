"""Results people act on: the result record contract, comparisons with significance, reports."""
