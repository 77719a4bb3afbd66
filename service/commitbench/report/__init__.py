"""`commitbench report`: a self-contained HTML page and PNG files of trends, the latest
comparison and device utilization."""
