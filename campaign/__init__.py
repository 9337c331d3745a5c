"""campaign: run benchmark campaigns locally or on AWS EC2 without losing data."""

__version__ = "0.1.0"
