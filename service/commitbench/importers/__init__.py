"""Importers of other tools' benchmark history: pytest-benchmark JSON files and asv
results directories, read into commitbench's runs (`commitbench import --format ...`)."""
