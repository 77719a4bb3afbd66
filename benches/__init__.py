"""The built-in bench suite: what `commitbench run` measures by default.

Each module here is a plain bench module. The runner puts this directory itself on the
worker's PYTHONPATH, so a module's name is its file name (`matmul`) and its cases read
`matmul.<function>[k=v,...]`. Files starting with `_` hold shared code, not benches.
"""
