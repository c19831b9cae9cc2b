"""Zero-shot evaluation of every (setup, seed) of one (task, source, target), fingerprinted by its inputs."""
