"""The counting: the ledger of publications, the statistics, the coverage of the checklist, the
registers, the weekly sync and the annual report. Reads what the pipeline wrote; never the reverse."""
