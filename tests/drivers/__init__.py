"""Tests of the robot drivers."""
