"""Files dictlab writes and reads: atomic writes, bounded JSON, plain names, allocation limits, safe tensor I/O."""
