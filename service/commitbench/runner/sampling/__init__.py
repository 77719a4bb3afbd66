"""Device sampling in the orchestrating process: NVML and psutil readings, the sampler
thread, and the per-case summaries (utilization, memory, power, energy)."""
