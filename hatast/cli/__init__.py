"""User commands: ``hatast train|test|upscale|demo``."""
